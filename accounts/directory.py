"""People and groups from the company directory: OpenID Connect or LDAP.

Both sign-in paths end here with a :class:`DirectoryIdentity`: what the
directory says about a person now. :func:`sync_user` makes the user match it:
name, email, staff status, and the Archivist groups their directory groups
map to. Only memberships the directory gave are ever taken back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEvent, DirectoryAccount, User
from accounts.services import audit_record

logger = logging.getLogger(__name__)


class DirectoryUnavailable(Exception):
    """The provider or directory could not be reached: nothing was decided."""


class SignInRefused(Exception):
    """The directory's answer does not let this person in; the message says
    why, in words for the person signing in."""


@dataclass(frozen=True)
class DirectoryIdentity:
    source: DirectoryAccount.Source
    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    groups: tuple[str, ...] = ()
    oidc_subject: str = ""
    ldap_dn: str = ""


def _mapped_group_names(directory_groups: Iterable[str]) -> set[str]:
    """The Archivist group names these directory groups give: the explicit
    ``DIRECTORY_GROUP_MAP`` entry, else (with ``DIRECTORY_GROUPS_BY_NAME``)
    the group of the same name."""
    mapping: dict[str, list[str]] = settings.DIRECTORY_GROUP_MAP
    names: set[str] = set()
    for name in directory_groups:
        if name in mapping:
            names.update(mapping[name])
        elif settings.DIRECTORY_GROUPS_BY_NAME:
            names.add(name)
    return names


def _archivist_groups(directory_groups: Iterable[str]) -> set[Group]:
    names = _mapped_group_names(directory_groups)
    groups = {group.name: group for group in Group.objects.filter(name__in=names)}
    explicit = {
        target
        for targets in settings.DIRECTORY_GROUP_MAP.values()
        for target in targets
    }
    # Groups named in the mapping are created when first needed; a directory
    # group matched by name only counts if an administrator made that group.
    for name in (names & explicit) - groups.keys():
        groups[name], _created = Group.objects.get_or_create(name=name)
    return set(groups.values())


def user_for_oidc(identity: DirectoryIdentity) -> User:
    """The user an OpenID Connect identity signs in as, created on the first
    sign-in. A local account or another person's account with the same
    username is never taken over."""
    account = (
        DirectoryAccount.objects.select_related("user")
        .filter(oidc_subject=identity.oidc_subject)
        .first()
    )
    if account is not None:
        return account.user
    existing = User.objects.filter(username__iexact=identity.username).first()
    if existing is None:
        return User(username=identity.username)
    linked = DirectoryAccount.objects.filter(user=existing).first()
    # An account the LDAP directory made is the same person under the same
    # name; a local account, or one tied to another subject, is not.
    if linked is None or linked.oidc_subject:
        raise SignInRefused(
            _(
                "An account named “%(username)s” already exists here and is not "
                "tied to this sign-in. Ask an administrator to rename it."
            )
            % {"username": identity.username}
        )
    return existing


def sync_user(
    user: User,
    identity: DirectoryIdentity,
    *,
    request: HttpRequest | None = None,
    created: bool = False,
) -> DirectoryAccount:
    """Make ``user`` (saved or not) what the directory says, in one
    transaction, and audit what changed; the user's directory account.
    ``created``: the sign-in that brought the user made them
    (django-auth-ldap saves them first)."""
    with transaction.atomic():
        created = created or user.pk is None
        if user.pk is None:
            user.set_unusable_password()
        _copy_profile(user, identity)
        staff_before = user.is_staff
        if settings.DIRECTORY_STAFF_GROUPS:
            user.is_staff = bool(
                set(identity.groups) & set(settings.DIRECTORY_STAFF_GROUPS)
            )
        user.save()
        account, _new = DirectoryAccount.objects.select_for_update().get_or_create(
            user=user, defaults={"source": identity.source}
        )
        account.source = identity.source
        account.oidc_subject = identity.oidc_subject or account.oidc_subject
        account.ldap_dn = identity.ldap_dn or account.ldap_dn
        account.directory_groups = sorted(identity.groups)
        account.active = True
        account.synced_at = timezone.now()
        account.save()
        added, removed = _sync_memberships(user, account, identity.groups)
    if created:
        audit_record(
            action=AuditEvent.Action.DIRECTORY_USER_CREATED,
            actor=user,
            target=user,
            request=request,
            details={"source": identity.source},
        )
    if added or removed or staff_before != user.is_staff:
        audit_record(
            action=AuditEvent.Action.DIRECTORY_GROUPS_CHANGED,
            actor=user,
            target=user,
            request=request,
            details={
                "source": identity.source,
                "directory_groups": sorted(identity.groups),
                "added": added,
                "removed": removed,
                "staff": user.is_staff,
            },
        )
    return account


def _copy_profile(user: User, identity: DirectoryIdentity) -> None:
    if not user.username:
        user.username = identity.username
    limits = {"email": 254, "first_name": 150, "last_name": 150}
    for name, limit in limits.items():
        value = getattr(identity, name)
        if value:
            setattr(user, name, value[:limit])


def _sync_memberships(
    user: User, account: DirectoryAccount, directory_groups: Iterable[str]
) -> tuple[list[str], list[str]]:
    wanted = _archivist_groups(directory_groups)
    given = set(account.groups.all())
    current = set(user.groups.all())
    to_add = wanted - current
    to_remove = given - wanted
    user.groups.add(*to_add)
    account.groups.add(*to_add)
    user.groups.remove(*to_remove)
    account.groups.remove(*to_remove)
    return sorted(group.name for group in to_add), sorted(
        group.name for group in to_remove
    )


def end_access(user: User, *, reason: str, request: HttpRequest | None = None) -> None:
    """The directory no longer knows the user (deleted, disabled, or its
    grant revoked): take back what it gave and refuse their tokens until a
    sign-in through the directory succeeds again."""
    with transaction.atomic():
        account = DirectoryAccount.objects.select_for_update().get(user=user)
        removed = sorted(group.name for group in account.groups.all())
        user.groups.remove(*account.groups.all())
        account.groups.clear()
        account.directory_groups = []
        account.active = False
        account.refresh_token = ""
        account.synced_at = timezone.now()
        account.save()
    logger.warning("Directory access ended for %s: %s", user, reason)
    audit_record(
        action=AuditEvent.Action.DIRECTORY_ACCESS_ENDED,
        actor=user,
        target=user,
        request=request,
        details={"reason": reason, "removed": removed},
    )

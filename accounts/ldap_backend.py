"""LDAP sign-in (OpenLDAP, Active Directory) through django-auth-ldap.

The user binds with their own password; groups and attributes are read as
``config.directory`` configures, and :mod:`accounts.directory` applies them.
An unreachable directory raises :class:`DirectoryUnavailable` instead of
looking like a wrong password.
"""

from __future__ import annotations

from typing import Any

import ldap
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from accounts.directory import (
    DirectoryIdentity,
    DirectoryUnavailable,
    sync_user,
)
from accounts.models import DirectoryAccount, User


@receiver(ldap_error)
def _raise_when_the_directory_fails(
    sender: Any, context: str, exception: Exception, **kwargs: Any
) -> None:
    """django-auth-ldap logs an LDAP error and carries on as if the person
    were unknown. A wrong password or an unknown person never arrives here;
    what does (server down, timeout, the service account refused, a wrong
    search base) means the directory could not answer, so say that: a sign-in
    shows it, and a token's check must not read it as "no longer known"."""
    raise DirectoryUnavailable(f"{context}: {exception!r}") from exception


def _first(attrs: dict[str, list[str]], name: str) -> str:
    values = attrs.get(name) or attrs.get(name.lower()) or []
    return str(values[0]) if values else ""


class DirectoryLDAPBackend(LDAPBackend):
    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[User, bool]:
        user, built = super().get_or_build_user(username, ldap_user)
        # A local account with this name belongs to someone here: never
        # hand it to whoever has that name in the directory.
        if not built and not DirectoryAccount.objects.filter(user=user).exists():
            raise PermissionDenied(f"{username} is a local account")
        ldap_user.built_here = built
        return user, built

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> User | None:
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            sync_user(
                user,
                self.identity(ldap_user),
                request=ldap_user._request,
                created=getattr(ldap_user, "built_here", False),
            )
        return user

    def lookup(self, username: str) -> DirectoryIdentity | None:
        """What the directory says of ``username`` now, through the service
        account; None when it does not know them (deleted or filtered out as
        disabled). Nothing is written."""
        from django_auth_ldap.backend import _LDAPUser

        ldap_user = _LDAPUser(self, username=username)
        try:
            if ldap_user.dn is None:
                return None
            return self.identity(ldap_user)
        except ldap.LDAPError as exc:
            raise DirectoryUnavailable(repr(exc)) from exc

    def identity(self, ldap_user: Any) -> DirectoryIdentity:
        attrs = ldap_user.attrs or {}
        attr_map: dict[str, str] = self.settings.USER_ATTR_MAP
        return DirectoryIdentity(
            source=DirectoryAccount.Source.LDAP,
            username=ldap_user._username,
            email=_first(attrs, attr_map.get("email", "mail")),
            first_name=_first(attrs, attr_map.get("first_name", "givenName")),
            last_name=_first(attrs, attr_map.get("last_name", "sn")),
            groups=tuple(sorted(ldap_user.group_names)),
            ldap_dn=ldap_user.dn,
        )

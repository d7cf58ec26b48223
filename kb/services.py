"""Writes for collections and grants. Callers have already checked the
permission through ``Collection.objects.for_user``; these record the audit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.models import AuditEvent, Person, User
from accounts.services import audit_record
from kb.models import Action, Collection, CollectionGrant, Role


def user_may_create_collections(user: Person) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return settings.COLLECTION_CREATORS == "everyone" or bool(user.is_staff)


def _name_taken(name: str, *, seen_by: User, other_than: int | None = None) -> bool:
    """Whether a collection ``seen_by`` may see already has this name. Names
    of collections hidden from them are never compared, so the answer
    reveals nothing they may not read."""
    visible = Collection.objects.for_user(seen_by, Action.VIEW).filter(
        name__iexact=name
    )
    if other_than is not None:
        visible = visible.exclude(pk=other_than)
    return visible.exists()


@transaction.atomic
def collection_create(
    *,
    name: str,
    description: str = "",
    creator: User,
    request: HttpRequest | None = None,
) -> Collection:
    """Create a collection; its creator becomes its manager."""
    if not user_may_create_collections(creator):
        raise PermissionDenied(_("Only administrators may create collections here."))
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("A collection needs a name.")})
    if _name_taken(name, seen_by=creator):
        raise ValidationError(
            {
                "name": ValidationError(
                    _("A collection with this name already exists."), code="duplicate"
                )
            }
        )
    collection = Collection.objects.create(
        name=name, description=description, created_by=creator
    )
    CollectionGrant.objects.create(
        collection=collection, user=creator, role=Role.MANAGER, granted_by=creator
    )
    audit_record(
        action=AuditEvent.Action.COLLECTION_CREATED,
        actor=creator,
        target=collection,
        request=request,
    )
    return collection


def collection_update(
    *,
    collection: Collection,
    actor: User,
    name: str | None = None,
    description: str | None = None,
    retention: tuple[str, int | None] | None = None,
    request: HttpRequest | None = None,
) -> Collection:
    """Rename, describe, or set the retention policy (action, days)."""
    changed: dict[str, Any] = {}
    if name is not None and name.strip() != collection.name:
        name = name.strip()
        if not name:
            raise ValidationError({"name": _("A collection needs a name.")})
        if _name_taken(name, seen_by=actor, other_than=collection.pk):
            raise ValidationError(
                {
                    "name": ValidationError(
                        _("A collection with this name already exists."),
                        code="duplicate",
                    )
                }
            )
        changed["name"] = name
        collection.name = name
    if description is not None and description != collection.description:
        changed["description"] = description
        collection.description = description
    if retention is not None:
        action, days = retention
        days = days if action else None
        if (action, days) != (collection.retention_action, collection.retention_days):
            changed["retention_action"] = action
            changed["retention_days"] = days
            collection.retention_action, collection.retention_days = action, days
    if changed:
        collection.save(update_fields=[*changed, "updated_at"])
        audit_record(
            action=AuditEvent.Action.COLLECTION_CHANGED,
            actor=actor,
            target=collection,
            request=request,
            details={"fields": sorted(changed)},
        )
    return collection


def collection_delete(
    *, collection: Collection, actor: User, request: HttpRequest | None = None
) -> None:
    """Delete a collection with its grants, documents and their chunks.
    Stored originals are removed once the transaction commits."""
    from kb.storage import delete_stored_files_on_commit

    with transaction.atomic():
        audit_record(
            action=AuditEvent.Action.COLLECTION_DELETED,
            actor=actor,
            target=collection,
            request=request,
            details={"documents": collection.documents.count()},
        )
        delete_stored_files_on_commit(
            list(collection.documents.values_list("storage_name", flat=True))
        )
        collection.delete()


def collection_touch(*, collection_id: int) -> None:
    """Bump the version: anything cached from the old contents is retired."""
    Collection.objects.filter(pk=collection_id).update(version=F("version") + 1)


def _manager_count(collection: Collection) -> int:
    return collection.grants.filter(role=Role.MANAGER).count()


@transaction.atomic
def grant_set(
    *,
    collection: Collection,
    role: str,
    actor: User,
    user: User | None = None,
    group: Group | None = None,
    request: HttpRequest | None = None,
) -> CollectionGrant:
    """Give ``user`` or ``group`` a role on the collection, or change it."""
    if (user is None) == (group is None):
        raise ValidationError(_("Choose either a user or a group."))
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role.")})
    if user is not None and not user.is_active:
        raise ValidationError({"user": _("This account is deactivated.")})
    Collection.objects.select_for_update().filter(pk=collection.pk).first()
    grant = CollectionGrant.objects.filter(
        collection=collection, user=user, group=group
    ).first()
    if grant is None:
        grant = CollectionGrant.objects.create(
            collection=collection, user=user, group=group, role=role, granted_by=actor
        )
        action = AuditEvent.Action.GRANT_CREATED
        details: dict[str, Any] = {"role": role}
    else:
        if grant.role == role:
            return grant
        if grant.role == Role.MANAGER and _manager_count(collection) == 1:
            raise ValidationError(_("A collection must keep at least one manager."))
        details = {"from": grant.role, "to": role}
        grant.role = role
        grant.save(update_fields=["role"])
        action = AuditEvent.Action.GRANT_CHANGED
    audit_record(
        action=action,
        actor=actor,
        target=grant,
        request=request,
        details={**details, "collection": collection.pk},
    )
    return grant


@transaction.atomic
def grant_revoke(
    *, grant: CollectionGrant, actor: User, request: HttpRequest | None = None
) -> None:
    Collection.objects.select_for_update().filter(pk=grant.collection_id).first()
    if grant.role == Role.MANAGER and _manager_count(grant.collection) == 1:
        raise ValidationError(_("A collection must keep at least one manager."))
    audit_record(
        action=AuditEvent.Action.GRANT_REVOKED,
        actor=actor,
        target=grant,
        request=request,
        details={"role": grant.role, "collection": grant.collection_id},
    )
    grant.delete()

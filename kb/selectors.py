"""Reads for collections and grants, always through the permission entry point."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.models import ApiToken, Person
from kb.models import (
    Action,
    Chunk,
    Collection,
    CollectionGrant,
    CollectionQuerySet,
    Document,
    Role,
)

ROLE_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.MANAGER: 3}


def collection_list(
    *, user: Person, token: ApiToken | None = None
) -> CollectionQuerySet:
    return Collection.objects.for_user(user, Action.VIEW, token=token).annotate(
        document_count=Count("documents", distinct=True)
    )


def roles_for_user(*, user: Person, collection_ids: list[int]) -> dict[int, Role]:
    """The strongest role ``user`` holds on each collection, directly or
    through a group, in one query."""
    roles: dict[int, Role] = {}
    if not getattr(user, "is_authenticated", False):
        return roles
    grants = CollectionGrant.objects.filter(collection_id__in=collection_ids).filter(
        Q(user=user) | Q(group__user=user)
    )
    for collection_id, role_value in grants.values_list("collection_id", "role"):
        role = Role(role_value)
        current = roles.get(collection_id)
        if current is None or ROLE_RANK[role] > ROLE_RANK[current]:
            roles[collection_id] = role
    return roles


def grant_list(*, collection: Collection) -> list[CollectionGrant]:
    return list(
        collection.grants.select_related("user", "group").order_by(
            "group__name", "user__username"
        )
    )


def _require_role(
    user: Person, collection_id: int, action: Action, token: ApiToken | None
) -> None:
    if action != Action.VIEW and not (
        Collection.objects.for_user(user, action, token=token)
        .filter(pk=collection_id)
        .exists()
    ):
        raise PermissionDenied(_("Your role on this collection does not allow this."))


def collection_for_action(
    user: Person, pk: int | str, action: Action, *, token: ApiToken | None = None
) -> Collection:
    """The collection, if ``user`` may do ``action`` to it. Raises Http404 when
    they may not even see it (so its existence is not revealed) and
    PermissionDenied when they see it but lack the role."""
    try:
        collection = Collection.objects.for_user(user, Action.VIEW, token=token).get(
            pk=pk
        )
    except (Collection.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such collection.")) from None
    _require_role(user, collection.pk, action, token)
    return collection


def document_for_action(
    user: Person, pk: int | str, action: Action, *, token: ApiToken | None = None
) -> Document:
    """The document, if ``user`` may do ``action`` to it (same rules as
    :func:`collection_for_action`, through the document's collection)."""
    visible = Document.objects.for_user(user, Action.VIEW, token=token).select_related(
        "collection"
    )
    try:
        document = visible.get(pk=pk)
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such document.")) from None
    _require_role(user, document.collection_id, action, token)
    return document


def collection_status_counts(*, collection: Collection) -> dict[str, int]:
    counts = dict(
        collection.documents.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in Document.Status.values}


def document_pages(*, document: Document) -> list[tuple[int | None, list[Chunk]]]:
    """The document's chunks grouped by page, in reading order."""
    pages: dict[int | None, list[Chunk]] = {}
    for chunk in document.chunks.order_by("ordinal").only(
        "id", "ordinal", "text", "page", "section_title"
    ):
        pages.setdefault(chunk.page, []).append(chunk)
    return list(pages.items())


DOCUMENT_TABLE_LIMIT = 500


def document_table(*, collection: Collection) -> dict[str, Any]:
    """What the collection's document table shows: the newest documents, the
    counts by status, and whether any is still being ingested (the page polls
    while it is)."""
    documents = list(
        collection.documents.order_by("-created_at")[:DOCUMENT_TABLE_LIMIT]
    )
    return {
        "documents": documents,
        "counts": collection_status_counts(collection=collection),
        "busy": any(not document.is_final for document in documents),
    }

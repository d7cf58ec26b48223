"""Retention: per-collection archiving or purging of old documents, and
audit-log retention. Run by beat (``ops.tasks.apply_retention``)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from ingest.documents import document_delete
from kb.models import Chunk, Collection, Document
from kb.services import collection_touch

logger = logging.getLogger(__name__)


def document_archive(*, document: Document) -> bool:
    """Keep the original and the row; drop the chunks so search and answers
    skip it (re-ingesting brings it back). Cached answers are retired."""
    with transaction.atomic():
        locked = (
            Document.objects.select_for_update()
            .filter(pk=document.pk, archived_at__isnull=True)
            .first()
        )
        if locked is None:
            return False
        Chunk.objects.filter(document_id=locked.pk).delete()
        locked.archived_at = timezone.now()
        # It has no chunks now (its collection's count follows, by trigger).
        locked.chunk_count = 0
        locked.save(update_fields=["archived_at", "chunk_count", "updated_at"])
        collection_touch(collection_id=locked.collection_id)
        audit_record(
            action=AuditEvent.Action.DOCUMENT_ARCHIVED,
            target=locked,
            details={"collection": locked.collection_id, "by": "retention"},
        )
    return True


def collection_retention(
    *, collection: Collection, now: dt.datetime | None = None
) -> dict[str, int]:
    """Apply one collection's policy to documents uploaded before its period."""
    if not collection.retention_action or not collection.retention_days:
        return {"archived": 0, "purged": 0}
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=collection.retention_days)
    old = Document.objects.filter(collection=collection, created_at__lt=cutoff)
    archived = purged = 0
    if collection.retention_action == "archive":
        # Only finished documents: one being ingested is archived next time.
        for document in old.filter(
            archived_at__isnull=True, status=Document.Status.READY
        ):
            archived += int(document_archive(document=document))
    elif collection.retention_action == "purge":
        for document in old:
            document_delete(document=document, actor=None)
            purged += 1
    return {"archived": archived, "purged": purged}


def audit_retention(*, now: dt.datetime | None = None) -> int:
    """Delete audit entries older than AUDIT_RETENTION_DAYS (0 keeps all).
    The append-only trigger allows it only with this transaction's flag."""
    days = settings.AUDIT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL archivist.audit_retention = 'on'")
        cursor.execute(
            "DELETE FROM accounts_auditevent WHERE created_at < %s", [cutoff]
        )
        return int(cursor.rowcount)


def retention_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    totals = {"archived": 0, "purged": 0, "audit_deleted": 0}
    for collection in Collection.objects.exclude(retention_action="").filter(
        retention_days__isnull=False
    ):
        counts = collection_retention(collection=collection, now=now)
        totals["archived"] += counts["archived"]
        totals["purged"] += counts["purged"]
    totals["audit_deleted"] = audit_retention(now=now)
    if any(totals.values()):
        logger.info("Retention: %s", totals)
    return totals

"""Celery tasks: interfaces only. They take ids and call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from ingest import pipeline

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def ingest_document(document_id: int) -> None:
    """Parse, chunk, embed and index one document. Safe to run twice."""
    from kb.models import Document

    if not Document.objects.filter(pk=document_id).exists():
        logger.info("Document %s no longer exists; skipping", document_id)
        return
    pipeline.document_ingest(document_id=document_id)


@shared_task(acks_late=True)
def reap_stalled_ingestions() -> dict[str, int]:
    return pipeline.reap_stalled()

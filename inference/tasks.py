"""Celery tasks: interfaces only."""

from __future__ import annotations

from celery import shared_task

from inference import summaries


@shared_task(acks_late=True)
def summarize_document(document_id: int) -> None:
    summaries.document_summarize(document_id=document_id)

"""Celery tasks: interfaces only."""

from __future__ import annotations

from celery import shared_task

from inference import summaries


@shared_task(acks_late=True)
def summarize_document(document_id: int) -> None:
    summaries.document_summarize(document_id=document_id)


@shared_task(acks_late=True)
def evaluation_run(run_id: int) -> None:
    """Answer a slice of an evaluation run's questions, then queue the rest:
    a run of hundreds of questions outlasts any one task's time limit."""
    from django.conf import settings

    from inference.evaluation.runner import run_execute

    budget = max(60, settings.CELERY_TASK_SOFT_TIME_LIMIT - 240)
    if not run_execute(run_id=run_id, time_budget_seconds=budget):
        evaluation_run.delay(run_id)

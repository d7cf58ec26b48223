"""Beat's operations tasks: interfaces that call one service each."""

from __future__ import annotations

from celery import shared_task

from ops.alerts import alerts_run
from ops.retention import retention_run


@shared_task(ignore_result=True)
def evaluate_alerts() -> None:
    alerts_run()


@shared_task(ignore_result=True)
def apply_retention() -> None:
    retention_run()

"""Sending Celery tasks from services without importing the tasks module
(which imports the services): by name, once the transaction commits."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, *args: Any) -> None:
    """Send ``task_name`` with ``args`` when the current transaction commits
    (at once outside one): a worker never looks for a row not yet committed,
    and a rolled-back change sends nothing."""
    transaction.on_commit(lambda: current_app.send_task(task_name, args=list(args)))

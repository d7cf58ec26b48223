"""The Celery application shared by every worker and beat process."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("archivist")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Imported for their signal handlers: every worker publishes a heartbeat and
# warms up its parser process and embedding model.
from core import heartbeat  # noqa: E402, F401
from ingest import worker  # noqa: E402, F401

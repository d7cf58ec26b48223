"""Project package: settings, the Celery app, URLs, and the embedded launcher."""

from config.celery import app as celery_app

__all__ = ["celery_app"]

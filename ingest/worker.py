"""Worker process start-up: the first document should not wait for the
parser process to import unstructured or for the embedding model to load."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_process_init

logger = logging.getLogger(__name__)


def warm_up() -> None:
    from django.db import connection

    from ingest.parsing import start_parser
    from kb.index import index_embedder

    try:
        start_parser()
        index_embedder()
    except Exception:
        # The first task loads them again and records the reason on the document.
        logger.exception("Warming up the ingestion worker failed")
    finally:
        connection.close()  # this thread's own connection


@worker_process_init.connect
def _warm_up_in_background(**_kwargs: Any) -> None:
    # In a thread: Celery kills a child whose start-up takes more than a few seconds.
    threading.Thread(target=warm_up, name="ingest-warm-up", daemon=True).start()

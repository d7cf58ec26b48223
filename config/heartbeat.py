"""Worker heartbeats in Redis, so /readyz can tell whether a worker is alive.

Each worker's main process writes ``archivist:worker-heartbeat:<hostname>``
every ``WORKER_HEARTBEAT_SECONDS`` with an expiry of
``WORKER_HEARTBEAT_MAX_AGE``; a worker that dies simply stops refreshing it.
A key per host, not one shared key, because workers run on many hosts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEAT_KEY_PREFIX = "archivist:worker-heartbeat:"

_stop = threading.Event()


def live_worker_names(client: redis.Redis) -> list[str]:
    """Hostnames of workers whose heartbeat has not expired."""
    names = []
    for key in client.scan_iter(match=f"{HEARTBEAT_KEY_PREFIX}*", count=100):
        raw = key.decode() if isinstance(key, bytes) else str(key)
        names.append(raw.removeprefix(HEARTBEAT_KEY_PREFIX))
    return sorted(names)


def _beat_forever(hostname: str) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    key = f"{HEARTBEAT_KEY_PREFIX}{hostname}"
    while not _stop.is_set():
        try:
            client.set(key, str(time.time()), ex=settings.WORKER_HEARTBEAT_MAX_AGE)
        except redis.RedisError as exc:
            # Keep trying: Redis may come back, and the worker is still useful.
            logger.warning("Could not write worker heartbeat: %s", exc)
        _stop.wait(settings.WORKER_HEARTBEAT_SECONDS)
    try:
        client.delete(key)
    except redis.RedisError:
        logger.info("Could not remove heartbeat of %s on shutdown", hostname)


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    _stop.clear()
    threading.Thread(
        target=_beat_forever, args=(hostname,), name="heartbeat", daemon=True
    ).start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    _stop.set()

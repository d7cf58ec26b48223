"""Worker heartbeats in Redis, so /readyz can tell whether a worker is alive,
and the reaper whether the process working on a document still is.

Each worker's main process writes ``archivist:worker-heartbeat:<hostname>``
every ``WORKER_HEARTBEAT_SECONDS`` with an expiry of
``WORKER_HEARTBEAT_MAX_AGE``; a worker that dies simply stops refreshing it.
A key per host, not one shared key, because workers run on many hosts.

Each process that runs tasks (every pool child) also keeps
``archivist:worker-process:<host>:<pid>`` alive, with an expiry of
``PROCESS_ALIVE_SECONDS``. Ingestion records that name on the documents it
claims; once the key has expired, the process is gone (a ``kill -9``, an
out-of-memory kill) and the reaper re-queues its documents at once, while a
live process that is merely slow keeps them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEAT_KEY_PREFIX = "archivist:worker-heartbeat:"
PROCESS_KEY_PREFIX = "archivist:worker-process:"
PROCESS_ALIVE_SECONDS = 30
PROCESS_REFRESH_SECONDS = 10

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
    # A solo pool runs tasks in this process.
    start_process_liveness()


# -- the liveness of each process that runs tasks ----------------------------
_process_name = ""
_process_pid = 0


def claim_name() -> str:
    """``host:pid`` of this process when it keeps a liveness key, else empty
    (a document claimed with an empty name waits for INGEST_STALL_SECONDS)."""
    return _process_name if _process_pid == os.getpid() else ""


def dead_claims(names: set[str]) -> set[str]:
    """The names whose liveness key has expired; none when Redis cannot be
    asked, so nothing is re-queued on a guess."""
    if not names:
        return set()
    from core.redis_pool import redis_client

    ordered = sorted(names)
    try:
        values = redis_client().mget([PROCESS_KEY_PREFIX + name for name in ordered])
    except redis.RedisError as exc:
        logger.warning("Could not read worker process liveness: %s", exc)
        return set()
    return {name for name, value in zip(ordered, values, strict=True) if value is None}


def _keep_process_alive(name: str) -> None:
    from core.redis_pool import redis_client

    while True:
        try:
            redis_client().set(PROCESS_KEY_PREFIX + name, 1, ex=PROCESS_ALIVE_SECONDS)
        except redis.RedisError as exc:
            logger.warning("Could not write worker process liveness: %s", exc)
        time.sleep(PROCESS_REFRESH_SECONDS)


@worker_process_init.connect
def start_process_liveness(**kwargs: Any) -> None:
    global _process_name, _process_pid
    if _process_pid == os.getpid():
        return
    name = f"{socket.gethostname()}:{os.getpid()}"
    from core.redis_pool import redis_client

    try:
        redis_client().set(PROCESS_KEY_PREFIX + name, 1, ex=PROCESS_ALIVE_SECONDS)
    except redis.RedisError as exc:
        # Without a key its claims would look dead: claim without a name.
        logger.warning("No liveness key for this worker process: %s", exc)
        return
    _process_name, _process_pid = name, os.getpid()
    threading.Thread(
        target=_keep_process_alive, args=(name,), name="liveness", daemon=True
    ).start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    _stop.set()

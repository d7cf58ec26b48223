"""Gauges read at scrape time from the broker, the heartbeats and the
database: what no process records as it happens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class LiveStateCollector(Collector):
    """Gauges read at scrape time: Celery queue depth from the broker, worker
    heartbeat ages, and documents per ingestion status."""

    def collect(self) -> Iterator[Any]:
        yield from self._queues_and_workers()
        yield from self._documents()

    def _queues_and_workers(self) -> Iterator[Any]:
        import redis

        from core.heartbeat import HEARTBEAT_KEY_PREFIX, live_worker_names
        from core.redis_pool import redis_client

        depth = GaugeMetricFamily(
            "archivist_queue_depth",
            "Messages waiting in each Celery queue.",
            labels=["queue"],
        )
        workers = GaugeMetricFamily(
            "archivist_worker_heartbeat_age_seconds",
            "Seconds since each live worker's last heartbeat.",
            labels=["worker"],
        )
        up = GaugeMetricFamily(
            "archivist_broker_up", "1 when the Redis broker answered the scrape."
        )
        try:
            client = redis_client()
            for queue, count in queue_depths(client).items():
                depth.add_metric([queue], count)
            now = time.time()
            for name in live_worker_names(client):
                # The heartbeat's value is the time it was written.
                beat = client.get(f"{HEARTBEAT_KEY_PREFIX}{name}")
                if beat is not None:
                    workers.add_metric([name], max(0.0, now - float(beat)))
            up.add_metric([], 1)
        except redis.RedisError:
            up.add_metric([], 0)
        yield depth
        yield workers
        yield up

    def _documents(self) -> Iterator[Any]:
        from django.db import DatabaseError
        from django.db.models import Count

        from kb.models import Document

        documents = GaugeMetricFamily(
            "archivist_documents", "Documents by ingestion status.", labels=["status"]
        )
        try:
            counts = dict(
                Document.objects.order_by()
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
        except DatabaseError:
            counts = {}
        for status in Document.Status.values:
            documents.add_metric([status], counts.get(status, 0))
        yield documents


def queue_depths(client: Any) -> dict[str, int]:
    """Messages waiting per queue. Celery's Redis transport keeps a queue as a
    list under its name, plus one list per priority step."""
    from django.conf import settings

    depths: dict[str, int] = {}
    for queue in settings.CELERY_QUEUE_NAMES:
        keys = [queue, *(f"{queue}\x06\x16{step}" for step in range(1, 10))]
        pipe = client.pipeline()
        for key in keys:
            pipe.llen(key)
        depths[queue] = sum(int(n) for n in pipe.execute())
    return depths

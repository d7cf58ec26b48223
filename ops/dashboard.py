"""What the operations dashboard shows, read from the database: answers
(latency percentiles, volume, cache hits, feedback), ingestion (volume and
failures), the slowest and most-asked questions, and failed documents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from inference.models import Message
from kb.models import Document

RANGES: dict[str, tuple[dt.timedelta, dt.timedelta, str]] = {
    # name: (span, bucket, label format)
    "24h": (dt.timedelta(hours=24), dt.timedelta(hours=1), "%H:%M"),
    "7d": (dt.timedelta(days=7), dt.timedelta(hours=6), "%m-%d %H"),
    "30d": (dt.timedelta(days=30), dt.timedelta(days=1), "%m-%d"),
}


@dataclass
class Buckets:
    starts: list[dt.datetime]
    labels: list[str]

    def index(self) -> dict[dt.datetime, int]:
        return {start: position for position, start in enumerate(self.starts)}


@dataclass
class DashboardData:
    range_name: str
    buckets: Buckets
    questions: list[float] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)
    p99: list[float | None] = field(default_factory=list)
    cache_hit_rate: list[float | None] = field(default_factory=list)
    ingested: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    chunks: list[float] = field(default_factory=list)
    helpful: list[float] = field(default_factory=list)
    unhelpful: list[float] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    slowest: list[dict[str, Any]] = field(default_factory=list)
    most_asked: list[dict[str, Any]] = field(default_factory=list)
    failed_documents: list[Document] = field(default_factory=list)


def _buckets(
    now: dt.datetime, span: dt.timedelta, step: dt.timedelta, fmt: str
) -> Buckets:
    # Aligned to the epoch like date_bin, so SQL buckets match these starts.
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    end = epoch + ((now - epoch) // step) * step
    count = int(span / step)
    starts = [end - step * (count - 1 - i) for i in range(count)]
    local = timezone.get_current_timezone()
    return Buckets(starts, [s.astimezone(local).strftime(fmt) for s in starts])


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# Failed and cancelled replies are no answers: they are counted apart and
# kept out of the answer counts and percentiles.
ANSWERS_SQL = """
SELECT date_bin(%(step)s, created_at, %(epoch)s) AS bucket, count(*),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
           (ORDER BY (timings_ms->>'total_ms')::float8),
       count(*) FILTER (WHERE from_cache <> '')
FROM inference_message
WHERE role = %(assistant)s AND created_at >= %(since)s
  AND status IN (%(complete)s, %(not_found)s)
GROUP BY 1
"""

ANSWER_TOTALS_SQL = """
SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
           (ORDER BY (timings_ms->>'total_ms')::float8)
           FILTER (WHERE status IN (%(complete)s, %(not_found)s)),
       count(*) FILTER (WHERE status = %(failed)s),
       count(*) FILTER (WHERE status = %(cancelled)s)
FROM inference_message
WHERE role = %(assistant)s AND created_at >= %(since)s
"""

INGESTION_SQL = """
SELECT date_bin(%(step)s, coalesce(ingested_at, updated_at), %(epoch)s) AS bucket,
       count(*) FILTER (WHERE status = %(ready)s),
       count(*) FILTER (WHERE status = %(failed)s),
       coalesce(sum(chunk_count) FILTER (WHERE status = %(ready)s), 0)
FROM kb_document
WHERE status IN (%(ready)s, %(failed)s)
  AND coalesce(ingested_at, updated_at) >= %(since)s
GROUP BY 1
"""

FEEDBACK_SQL = """
SELECT date_bin(%(step)s, created_at, %(epoch)s) AS bucket,
       count(*) FILTER (WHERE helpful), count(*) FILTER (WHERE NOT helpful)
FROM inference_feedback
WHERE created_at >= %(since)s
GROUP BY 1
"""

SLOWEST_SQL = """
SELECT m.id, m.created_at, (m.timings_ms->>'total_ms')::float8 AS total_ms, m.status,
       (SELECT q.content FROM inference_message q
         WHERE q.conversation_id = m.conversation_id AND q.role = %(user)s AND q.id < m.id
         ORDER BY q.id DESC LIMIT 1) AS question
FROM inference_message m
WHERE m.role = %(assistant)s AND m.created_at >= %(since)s AND m.timings_ms ? 'total_ms'
ORDER BY total_ms DESC
LIMIT 10
"""

MOST_ASKED_SQL = """
SELECT lower(btrim(content)) AS question, count(*) AS times, max(created_at) AS last
FROM inference_message
WHERE role = %(user)s AND created_at >= %(since)s
GROUP BY 1
ORDER BY times DESC, last DESC
LIMIT 10
"""


def dashboard_data(
    *, range_name: str = "24h", now: dt.datetime | None = None
) -> DashboardData:
    if range_name not in RANGES:
        range_name = "24h"
    span, step, fmt = RANGES[range_name]
    now = now or timezone.now()
    buckets = _buckets(now, span, step, fmt)
    params = {
        "step": step,
        "epoch": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        "since": buckets.starts[0],
        "assistant": Message.Role.ASSISTANT,
        "user": Message.Role.USER,
        "ready": Document.Status.READY,
        "failed": Document.Status.FAILED,
    }
    where = buckets.index()
    size = len(buckets.starts)
    data = DashboardData(range_name, buckets)
    data.questions = [0.0] * size
    data.p50, data.p95, data.p99 = [None] * size, [None] * size, [None] * size
    data.cache_hit_rate = [None] * size
    answers = cached = 0
    answer_params = {
        **params,
        "complete": Message.Status.COMPLETE,
        "not_found": Message.Status.NOT_FOUND,
        "failed": Message.Status.FAILED,
        "cancelled": Message.Status.CANCELLED,
    }
    for bucket, count, percentiles, hits in _rows(ANSWERS_SQL, answer_params):
        position = where.get(bucket)
        if position is None:
            continue
        data.questions[position] = float(count)
        if percentiles:
            p50, p95, p99 = (None if v is None else v / 1000 for v in percentiles)
            data.p50[position], data.p95[position], data.p99[position] = p50, p95, p99
        data.cache_hit_rate[position] = 100.0 * hits / count if count else None
        answers += count
        cached += hits
    data.ingested, data.failed, data.chunks = [0.0] * size, [0.0] * size, [0.0] * size
    for bucket, ready, failed, chunks in _rows(INGESTION_SQL, params):
        position = where.get(bucket)
        if position is not None:
            data.ingested[position] = float(ready)
            data.failed[position] = float(failed)
            data.chunks[position] = float(chunks)
    data.helpful, data.unhelpful = [0.0] * size, [0.0] * size
    for bucket, good, bad in _rows(FEEDBACK_SQL, params):
        position = where.get(bucket)
        if position is not None:
            data.helpful[position], data.unhelpful[position] = float(good), float(bad)
    good_total, bad_total = sum(data.helpful), sum(data.unhelpful)
    percentiles, failed_answers, cancelled_answers = _rows(
        ANSWER_TOTALS_SQL, answer_params
    )[0]
    overall = percentiles or [None, None, None]
    data.totals = {
        "answers": answers,
        "failed_answers": int(failed_answers),
        "cancelled_answers": int(cancelled_answers),
        "cache_hit_rate": 100.0 * cached / answers if answers else None,
        "p50": None if overall[0] is None else overall[0] / 1000,
        "p95": None if overall[1] is None else overall[1] / 1000,
        "p99": None if overall[2] is None else overall[2] / 1000,
        "ingested": int(sum(data.ingested)),
        "failed": int(sum(data.failed)),
        "chunks": int(sum(data.chunks)),
        "helpful": int(good_total),
        "unhelpful": int(bad_total),
        "helpful_ratio": (
            100.0 * good_total / (good_total + bad_total)
            if good_total + bad_total
            else None
        ),
    }
    data.slowest = [
        {
            "id": row[0],
            "created_at": row[1],
            "seconds": row[2] / 1000,
            "status": row[3],
            "question": row[4] or "",
        }
        for row in _rows(SLOWEST_SQL, params)
    ]
    data.most_asked = [
        {"question": row[0], "times": row[1], "last": row[2]}
        for row in _rows(MOST_ASKED_SQL, params)
    ]
    data.failed_documents = list(
        Document.objects.filter(status=Document.Status.FAILED)
        .select_related("collection")
        .order_by("-updated_at")[:20]
    )
    return data

"""Prometheus metrics for every Archivist process (web, worker, beat).

Counters and histograms are recorded where things happen (requests, answers,
the answer cache, ingestion, the LLM client). Under uvicorn and Celery many
processes record them, so when ``PROMETHEUS_MULTIPROC_DIR`` is set (the
launcher and compose set it) each process writes its samples to files there
and ``/metrics`` adds them up. The files are named by host and process id, so
web and worker containers may share one volume without overwriting each
other. Values that describe the present (queue depth, worker heartbeats,
documents by status) are read when Prometheus scrapes, not recorded.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from prometheus_client import values
from prometheus_client.registry import Collector

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    # Before any metric exists: file names must be unique across hosts.
    _HOST = socket.gethostname()
    values.ValueClass = values.MultiProcessValue(
        process_identifier=lambda: f"{_HOST}-{os.getpid()}"
    )

from prometheus_client import Counter, Histogram

# Seconds: from a cached answer (tens of ms) to a slow CPU model (a minute).
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

HTTP_REQUEST_SECONDS = Histogram(
    "archivist_http_request_duration_seconds",
    "Time to produce a response (a stream's headers), by route pattern.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
ANSWER_SECONDS = Histogram(
    "archivist_answer_duration_seconds",
    "Answer latency by phase: retrieval, first_token, generation, total.",
    ["phase", "cached"],
    buckets=LATENCY_BUCKETS,
)
ANSWERS = Counter(
    "archivist_answers_total",
    "Answers by outcome (complete, not_found, failed, cancelled).",
    ["status"],
)
ANSWER_CACHE_LOOKUPS = Counter(
    "archivist_answer_cache_lookups_total",
    "Answer cache lookups by result: exact or semantic hit, or miss.",
    ["result"],
)
INGESTED_DOCUMENTS = Counter(
    "archivist_ingest_documents_total",
    "Documents that finished ingestion, by outcome (ready or failed).",
    ["outcome"],
)
INGEST_FAILURES = Counter(
    "archivist_ingest_failures_total",
    "Documents that failed, by the stage they were in.",
    ["stage"],
)
INGESTED_CHUNKS = Counter(
    "archivist_ingest_chunks_total", "Chunks embedded and written."
)
INGEST_STAGE_SECONDS = Histogram(
    "archivist_ingest_stage_duration_seconds",
    "Time spent per ingestion batch in each stage (parse, embed, write).",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
LLM_ERRORS = Counter(
    "archivist_llm_errors_total",
    "LLM calls that failed, by kind (unavailable, http_error, first_token_timeout, "
    "stalled, total_timeout, broken).",
    ["kind"],
)


def observe_answer(timings_ms: dict[str, float], *, status: str, cached: bool) -> None:
    label = "yes" if cached else "no"
    ANSWERS.labels(status=status).inc()
    for phase in ("retrieval", "first_token", "generation", "total"):
        value = timings_ms.get(f"{phase}_ms")
        if value is not None:
            ANSWER_SECONDS.labels(phase=phase, cached=label).observe(value / 1000)


def render(*live_collectors: Collector) -> tuple[bytes, str]:
    """The exposition text for a scrape, and its content type; ``live_collectors``
    are read at scrape time (state that no process records as it happens)."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    registry: CollectorRegistry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry)
    live = CollectorRegistry()
    for collector in live_collectors:
        live.register(collector)
    return output + generate_latest(live), CONTENT_TYPE_LATEST

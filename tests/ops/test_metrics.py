"""/metrics: who may read it, and that it carries what the web, the worker
and the answer path record (multiprocess: the worker's counters show up in
the web's scrape)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from kb.models import Document
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final


def _sample(body: str, name: str, labels: str = "") -> float:
    pattern = (
        re.escape(name)
        + (r"\{[^}]*" + re.escape(labels) + r"[^}]*\}" if labels else r"(\{[^}]*\})?")
        + r" ([0-9.e+-]+)"
    )
    values = [float(m.group(m.lastindex or 0)) for m in re.finditer(pattern, body)]
    return sum(values)


def test_metrics_refuse_other_addresses_and_wrong_tokens(db: None, settings) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    outsider = Client(REMOTE_ADDR="10.20.30.40")
    assert outsider.get("/metrics").status_code == 403
    wrong = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert right.status_code == 200
    assert "archivist_http_request_duration_seconds" in right.content.decode()


def test_metrics_allow_listed_network(db: None, settings) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert Client(REMOTE_ADDR="10.20.30.40").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_request_latency_by_route_and_live_gauges(world: World, client: Client) -> None:
    client.force_login(world.alice)
    assert client.get(f"/collections/{world.collection_a.pk}/").status_code == 200
    body = client.get("/metrics").content.decode()
    assert (
        _sample(
            body,
            "archivist_http_request_duration_seconds_count",
            'route="collections/<int:pk>/"',
        )
        >= 1
    )
    # Read at scrape time from the broker and the database.
    assert 'archivist_queue_depth{queue="ingest"}' in body
    assert 'archivist_documents{status="queued"}' in body
    assert "archivist_broker_up 1.0" in body


@pytest.mark.slow
def test_worker_counters_reach_the_web_scrape(ingest_world: World) -> None:
    """The worker is another process: its ingestion counters are added up
    with the web's through PROMETHEUS_MULTIPROC_DIR."""
    client = Client()
    before = _sample(
        client.get("/metrics").content.decode(),
        "archivist_ingest_documents_total",
        'outcome="ready"',
    )
    outcome = upload_bytes(
        ingest_world,
        ingest_world.collection_b,
        "metrics.txt",
        b"Prometheus scrapes counters written by every worker process.",
    )
    document = wait_final([outcome.document.pk], timeout=120)[outcome.document.pk]
    assert document.status == Document.Status.READY, document.failure_reason
    body = client.get("/metrics").content.decode()
    assert (
        _sample(body, "archivist_ingest_documents_total", 'outcome="ready"')
        >= before + 1
    )
    assert _sample(body, "archivist_ingest_chunks_total") >= 1
    assert (
        _sample(body, "archivist_ingest_stage_duration_seconds_count", 'stage="embed"')
        >= 1
    )
    assert re.search(
        r'archivist_worker_heartbeat_age_seconds\{worker="test-worker', body
    )

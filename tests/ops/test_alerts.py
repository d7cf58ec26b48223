"""Alerts: thresholds, states on the dashboard, and webhook deliveries when
an alert starts and stops firing."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.utils import timezone

from kb.models import Document
from ops.alerts import alert_settings, alerts_run, evaluate
from ops.models import AlertState
from tests.conftest import World


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _finish(document: Document, status: str, reason: str = "") -> None:
    Document.objects.filter(pk=document.pk).update(
        status=status, failure_reason=reason, updated_at=timezone.now()
    )


def test_failure_rate_fires_then_resolves_through_the_webhook(
    world: World, webhook: tuple[str, list[dict[str, Any]]], settings
) -> None:
    url, received = webhook
    settings.ALERT_WEBHOOK_URL = url
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # also: the LLM is down
    documents = [world.document_a]
    for number in range(3):
        documents.append(
            Document.objects.create(
                collection=world.collection_a,
                title=f"broken-{number}.pdf",
                original_filename=f"broken-{number}.pdf",
                sha256=f"{number:064d}",
            )
        )
    for document in documents[:3]:
        _finish(document, Document.Status.FAILED, "The PDF is damaged.")
    _finish(documents[3], Document.Status.READY)

    states = {state.name: state for state in alerts_run()}
    assert states["failure_rate"].firing
    assert states["failure_rate"].value == pytest.approx(75.0)
    assert states["llm_down"].firing
    assert not states["p95_latency"].firing
    firing = {(item["alert"], item["status"]) for item in received}
    assert firing == {("failure_rate", "firing"), ("llm_down", "firing")}
    assert "FIRING" in received[0]["text"]

    # Nothing changed: no second delivery.
    alerts_run()
    assert len(received) == 2

    # Raise the threshold above the rate: the alert resolves, once.
    config = alert_settings()
    config.failure_rate_percent = 90
    config.save()
    alerts_run()
    assert ("failure_rate", "resolved") in {
        (item["alert"], item["status"]) for item in received
    }
    assert not AlertState.objects.get(name="failure_rate").firing


def test_failed_delivery_is_retried(world: World, settings) -> None:
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # nobody listens
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    state = {s.name: s for s in alerts_run()}["llm_down"]
    assert state.firing and not state.notified
    assert "ConnectError" in state.last_error


def test_stalled_queue_and_latency(world: World, settings) -> None:
    Document.objects.filter(pk=world.document_a.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=40)
    )
    world.answer_a.timings_ms = {"total_ms": 45_000}
    world.answer_a.save()
    results = {item.name: item for item in evaluate()}
    assert results["stalled_queue"].firing
    assert (results["stalled_queue"].value or 0) > 39
    assert results["p95_latency"].firing
    assert results["p95_latency"].value == pytest.approx(45.0)
    # A backlog that is being worked through is not stalled.
    finished = Document.objects.create(
        collection=world.collection_b,
        title="done.txt",
        original_filename="done.txt",
        sha256="f" * 64,
        status=Document.Status.READY,
    )
    assert not {item.name: item for item in evaluate()}["stalled_queue"].firing
    finished.delete()
    config = alert_settings()
    config.stalled_queue_minutes = 0  # 0 turns an alert off
    config.p95_latency_seconds = 60
    config.save()
    results = {item.name: item for item in evaluate()}
    assert not results["stalled_queue"].firing
    assert not results["p95_latency"].firing

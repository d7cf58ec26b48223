"""/healthz and /readyz against the real services the harness started."""

from __future__ import annotations

import time

import pytest
from django.test import Client, override_settings

from tests.harness import embedded_services

pytestmark = pytest.mark.django_db


def _readyz(client: Client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_healthz_answers_while_the_process_lives(client: Client) -> None:
    """Liveness needs nothing but the process itself."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_component_ready(
    client: Client, celery_worker, llm_base_url
) -> None:
    """With database, Redis, a worker and the LLM up, /readyz is 200."""
    status, body = _readyz(client)
    assert status == 200, body
    assert body["down"] == []
    assert set(body["components"]) == {"database", "redis", "worker", "llm"}
    assert body["components"]["database"]["detail"].startswith("pgvector 0.8")


def test_readyz_names_a_missing_worker(client: Client, llm_base_url) -> None:
    """A Redis database with no heartbeat in it means no worker: 503, named."""
    from django.conf import settings

    other_db = settings.REDIS_URL.rsplit("/", 1)[0] + "/9"
    with override_settings(REDIS_URL=other_db):
        status, body = _readyz(client)
    assert status == 503
    assert body["down"] == ["worker"]
    assert "no Celery worker heartbeat" in body["components"]["worker"]["detail"]


def test_readyz_names_an_unreachable_llm(client: Client, celery_worker) -> None:
    """An LLM URL nobody listens on turns /readyz to 503 naming only the LLM."""
    with override_settings(LLM_BASE_URL="http://127.0.0.1:9/v1"):
        status, body = _readyz(client)
    assert status == 503
    assert body["down"] == ["llm"]
    assert body["components"]["llm"]["ok"] is False


def test_killing_the_llm_server_turns_readyz_503_and_back(
    client: Client, celery_worker, llm_base_url
) -> None:
    """Kill -9 the real LLM server: /readyz names it; restart it: ready again."""
    services = embedded_services()
    if not any(p.name == "llm" for p in services.processes):
        pytest.skip("LLM_BASE_URL points at an external server; nothing to kill here")
    llm = services.process("llm")
    llm.kill_hard()
    status, body = _readyz(client)
    assert status == 503
    assert body["down"] == ["llm"]

    llm.start()  # waits until /v1/models answers again
    deadline = time.monotonic() + 30
    while (status := _readyz(client)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 200


def test_readyz_reports_a_dead_database(
    client: Client, celery_worker, llm_base_url
) -> None:
    """A database nobody listens on is reported as down, without a 500."""
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    original_host = settings_dict["HOST"]
    connections["default"].close()
    settings_dict["HOST"] = "/nonexistent-socket-dir"
    try:
        status, body = _readyz(client)
    finally:
        connections["default"].close()
        settings_dict["HOST"] = original_host
    assert status == 503
    assert "database" in body["down"]

"""Shared fixtures: the real services started by ``tests.harness``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.heartbeat import live_worker_names
from config.launcher import ManagedProcess
from tests.harness import embedded_services


def _test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created."""
    params = connection.settings_dict
    return f"postgresql://{params['USER']}:{params['PASSWORD']}@/{params['NAME']}?host={params['HOST']}"


@pytest.fixture(scope="session")
def llm_base_url() -> str:
    """The real LLM server (llama.cpp + SmolLM2), waited for on first use."""
    services = embedded_services()
    if any(p.name == "llm" for p in services.processes):
        services.process("llm").wait_ready()
    return settings.LLM_BASE_URL


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[ManagedProcess]:
    """A real Celery worker process on the test database and the test Redis."""
    services = embedded_services()
    worker = services.start_worker(
        env=services.child_env(DATABASE_URL=_test_database_url()), name="test-worker"
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 60
    while not any(name.startswith("test-worker") for name in live_worker_names(client)):
        if not worker.alive():
            pytest.fail(f"The Celery worker died on start; see {worker.log_path}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"The Celery worker sent no heartbeat in 60s; see {worker.log_path}"
            )
        time.sleep(0.2)
    yield worker
    worker.stop()

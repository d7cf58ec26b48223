"""Liveness (/healthz) and readiness (/readyz) endpoints.

/healthz answers as long as the process serves requests. /readyz checks each
dependency the product needs and says, in JSON, which one is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.heartbeat import live_worker_names
from core.redis_pool import redis_client

CHECK_TIMEOUT_SECONDS = 2.0


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return f"pgvector {row[0]}" if row else "connected (pgvector not installed yet)"


def _check_redis() -> str:
    redis_client().ping()
    return "pong"


def _check_worker() -> str:
    names = live_worker_names(redis_client())
    if not names:
        raise RuntimeError(
            "no Celery worker heartbeat in the last "
            f"{settings.WORKER_HEARTBEAT_MAX_AGE}s; start one with "
            "`celery -A config worker`"
        )
    return ", ".join(names)


def _check_llm() -> str:
    headers = (
        {"Authorization": f"Bearer {settings.LLM_API_KEY}"}
        if settings.LLM_API_KEY
        else {}
    )
    response = httpx.get(
        f"{settings.LLM_BASE_URL}/models",
        headers=headers,
        timeout=CHECK_TIMEOUT_SECONDS,
    )
    response.raise_for_status()
    models = [item.get("id", "?") for item in response.json().get("data", [])]
    return ", ".join(models) or "no models listed"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_database,
    "redis": _check_redis,
    "worker": _check_worker,
    "llm": _check_llm,
}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    components: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            detail = check()
            ok = True
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            ok = False
        components[name] = {
            "ok": ok,
            "detail": detail,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
    down = [name for name, result in components.items() if not result["ok"]]
    body = {
        "status": "ready" if not down else "unavailable",
        "down": down,
        "components": components,
    }
    return JsonResponse(body, status=503 if down else 200)

"""Per-token rate limits: 429 with Retry-After, counted per token."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.test import Client

from accounts.services import token_create
from tests.conftest import World


def test_token_over_its_limit_gets_429_with_retry_after(
    world: World, settings: Any
) -> None:
    cache.clear()
    settings.API_RATE_LIMITS = {"api": "3/min", "ask": "1/min"}
    first = token_create(user=world.bob, name="first").plaintext
    second = token_create(user=world.bob, name="second").plaintext
    client = Client(HTTP_AUTHORIZATION=f"Bearer {first}")
    statuses = [client.get("/api/v1/collections/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/collections/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert limited.json()["detail"]
    # Another token of the same user has its own budget.
    other = Client(HTTP_AUTHORIZATION=f"Bearer {second}")
    assert other.get("/api/v1/collections/").status_code == 200


def test_questions_have_their_own_lower_limit(world: World, settings: Any) -> None:
    cache.clear()
    settings.API_RATE_LIMITS = {"api": "100/min", "ask": "1/min"}
    client = Client()
    client.force_login(world.charlie)
    # Empty questions are refused (400) but still count: each could have run the LLM.
    assert (
        client.post("/api/v1/ask/", {}, content_type="application/json").status_code
        == 400
    )
    second = client.post("/api/v1/ask/", {}, content_type="application/json")
    assert second.status_code == 429 and "Retry-After" in second
    assert client.get("/api/v1/collections/").status_code == 200


def test_pages_are_bounded(world: World) -> None:
    client = Client()
    client.force_login(world.alice)
    body = client.get("/api/v1/collections/?limit=100000").json()
    assert "results" in body and len(body["results"]) <= 200


def test_the_window_slides_over_the_previous_minute(
    world: World, settings: Any, monkeypatch: Any
) -> None:
    """Requests near the end of one minute still count early in the next, in
    proportion to the part of that minute the sliding window covers."""
    cache.clear()
    settings.API_RATE_LIMITS = {"api": "3/min", "ask": "1/min"}
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {token_create(user=world.bob, name='t').plaintext}"
    )
    start = 60 * 29_000_000  # the start of some minute
    now = {"t": start + 50.0}
    monkeypatch.setattr("accounts.throttling.time.time", lambda: now["t"])
    assert [client.get("/api/v1/collections/").status_code for _ in range(3)] == [
        200,
        200,
        200,
    ]
    now["t"] = start + 66.0  # 10 % into the next minute: 0.9 x 3 still count
    refused = client.get("/api/v1/collections/")
    # Allowed once the previous minute weighs at most 2 of 3: 20 s in, 14 s on.
    assert refused.status_code == 429 and refused["Retry-After"] == "14"
    now["t"] = start + 80.0
    assert client.get("/api/v1/collections/").status_code == 200

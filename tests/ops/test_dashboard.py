"""The staff dashboard: charts drawn on the server, tables, thresholds form."""

from __future__ import annotations

from django.test import Client

from inference.models import Feedback, Message
from kb.models import Document
from ops.models import AlertSettings
from tests.conftest import World


def _answers(world: World) -> None:
    for seconds, cached in ((0.8, ""), (2.0, ""), (12.5, ""), (0.04, "exact")):
        Message.objects.create(
            conversation=world.conversation_a,
            role=Message.Role.USER,
            content="How do I request leave?",
        )
        Message.objects.create(
            conversation=world.conversation_a,
            role=Message.Role.ASSISTANT,
            content="Ask your manager [1].",
            from_cache=cached,
            timings_ms={"total_ms": seconds * 1000, "retrieval_ms": 20},
        )
    Feedback.objects.create(message=world.answer_a, user=world.alice, helpful=True)
    Document.objects.filter(pk=world.document_a.pk).update(
        status=Document.Status.FAILED, failure_reason="The PDF is damaged."
    )


def test_staff_see_charts_and_tables(world: World, client: Client) -> None:
    _answers(world)
    client.force_login(world.admin)
    response = client.get("/operations/dashboard/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") == 5
    assert "<script" not in page.split("<main", 1)[-1]  # charts need no script
    data = response.context["data"]
    assert data.totals["answers"] == 5  # four above and alice's first answer
    assert data.totals["cache_hit_rate"] == 20.0
    assert data.totals["p99"] > 10
    assert data.slowest[0]["seconds"] == 12.5
    assert data.slowest[0]["question"] == "How do I request leave?"
    assert data.most_asked[0] == {
        "question": "how do i request leave?",
        "times": 4,
        "last": data.most_asked[0]["last"],
    }
    assert "The PDF is damaged." in page
    assert data.totals["helpful"] == 1
    for name in ("7d", "30d"):
        assert client.get(f"/operations/dashboard/?range={name}").status_code == 200


def test_failed_and_cancelled_replies_are_not_counted_as_answers(
    world: World, client: Client
) -> None:
    _answers(world)
    for status, seconds in (
        (Message.Status.FAILED, 90.0),
        (Message.Status.CANCELLED, 300.0),
        (Message.Status.NOT_FOUND, 1.0),
    ):
        Message.objects.create(
            conversation=world.conversation_a,
            role=Message.Role.ASSISTANT,
            content="",
            status=status,
            timings_ms={"total_ms": seconds * 1000},
        )
    client.force_login(world.admin)
    data = client.get("/operations/dashboard/").context["data"]
    # Five complete answers and one decline; the two that failed or were
    # cancelled are counted apart and stay out of the percentiles.
    assert data.totals["answers"] == 6
    assert (data.totals["failed_answers"], data.totals["cancelled_answers"]) == (1, 1)
    assert data.totals["p99"] < 13


def test_thresholds_are_saved_and_checked(world: World, client: Client) -> None:
    client.force_login(world.admin)
    response = client.post(
        "/operations/dashboard/",
        {
            "p95_latency_seconds": "5",
            "failure_rate_percent": "10",
            "stalled_queue_minutes": "30",
            "llm_down": "on",
            "window_minutes": "60",
            "webhook_url": "",
        },
    )
    assert response.status_code == 302
    config = AlertSettings.objects.get(pk=1)
    assert config.p95_latency_seconds == 5
    page = client.get("/operations/dashboard/").content.decode()
    assert "Answer latency" in page and "Stalled queue" in page
    bad = client.post("/operations/dashboard/", {"p95_latency_seconds": "-1"})
    assert bad.status_code == 200
    assert AlertSettings.objects.get(pk=1).p95_latency_seconds == 5


def test_people_without_staff_rights_never_see_it(world: World, client: Client) -> None:
    for user in (world.alice, world.bob, world.charlie):
        client.force_login(user)
        response = client.get("/operations/dashboard/")
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]

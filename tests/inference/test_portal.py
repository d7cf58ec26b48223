"""The Ask pages: streaming through the portal, safe rendering, no database
connection held while the model writes."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.template import Context, Template
from django.test import Client

from inference.llm import LLMClient
from inference.models import Message
from inference.services import ask
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final


def test_answer_html_escapes_the_model_and_links_only_real_citations() -> None:
    rendered = Template("{% load answers %}{% answer_html text citations %}").render(
        Context(
            {
                "text": "Use <img src=x onerror=alert(1)> see [1] and [7].\n\nNext",
                "citations": [{"n": 1, "url": "/documents/5/?chunk=9#chunk-9"}],
            }
        )
    )
    assert "<img" not in rendered and "&lt;img" in rendered
    assert '<a class="cite" href="/documents/5/?chunk=9#chunk-9">[1]</a>' in rendered
    assert "[7]" in rendered and 'href="[7]' not in rendered
    assert rendered.count("<p>") == 2


def test_conversation_page_shows_history_escaped(world: World) -> None:
    world.answer_a.content = "<script>alert(1)</script> Welcome [1]."
    world.answer_a.citations = [
        {
            "n": 1,
            "url": "/documents/1/?chunk=1#chunk-1",
            "title": "welcome.txt",
            "page": None,
        }
    ]
    world.answer_a.save()
    client = Client()
    client.force_login(world.alice)
    page = client.get(f"/ask/{world.conversation_a.pk}/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert 'class="cite"' in page and "welcome.txt" in page
    home = client.get("/").content.decode()
    assert "Alice asks" in home  # the conversation list
    client.force_login(world.bob)
    assert "Alice asks" not in client.get("/").content.decode()


def test_portal_streams_events_and_holds_no_connection_while_writing(
    ingest_world: World, faulty_llm: Any, settings: Any
) -> None:
    world = ingest_world
    outcome = upload_bytes(
        world, world.collection_a, "leave.txt",
        b"Parental leave\n\nEmployees get sixteen weeks of paid parental leave.",
    )  # fmt: skip
    wait_final([outcome.document.pk], timeout=120)
    faulty_llm.behaviour = "stall"
    settings.LLM_BETWEEN_TOKENS_TIMEOUT = 1.0
    events = ask(
        user=world.bob,
        question="How many weeks of parental leave do employees get?",
        llm=LLMClient(base_url=faulty_llm.url),
        use_cache=False,
    )
    names = []
    for event in events:
        names.append(event["event"])
        if event["event"] == "token":
            # The model is writing: this process holds no database connection.
            assert connection.connection is None
    assert names[0] == "meta" and names[-1] == "error"
    failed = Message.objects.filter(role="assistant").latest("id")
    assert failed.status == "failed" and "stopped in the middle" in failed.error

    client = Client()
    client.force_login(world.bob)
    response = client.post("/ask/stream/", {"question": "   "})
    assert response.status_code == 400
    settings.LLM_BASE_URL = faulty_llm.url
    faulty_llm.behaviour = "stall"
    response = client.post(
        "/ask/stream/", {"question": "How long is parental leave for employees?"}
    )
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("event: meta") and "event: token" in body
    assert (
        "leave.txt" in body
    )  # the passages reach the browser even when the model fails
    assert "event: error" in body

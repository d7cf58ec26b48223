"""Asking, end to end: real worker, real embedding model, real LLM server.

alice manages A and B; bob reads A (through a group); charlie reads nothing.
A holds two product policies; B holds a confidential budget.
"""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from accounts.services import token_create
from inference import prompts
from inference.cache import AnswerCache
from inference.llm import LLMClient
from inference.models import Conversation, Message
from inference.services import ask, collect, history_sources
from kb.models import Role
from kb.services import grant_revoke, grant_set
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final


def _ask(user: Any, question: str, **kwargs: Any) -> dict[str, Any]:
    return collect(ask(user=user, question=question, **kwargs))


def _documents(result: dict[str, Any]) -> set[int]:
    return {p["document_id"] for p in result["passages"]}


def test_answer_is_drawn_from_the_document_and_cites_it(library: World) -> None:
    result = _ask(library.alice, "What is the refund window for Zephyr headphones?")
    assert result["status"] == Message.Status.COMPLETE, result
    assert result["answer"].strip()
    assert library.zephyr.pk in _documents(result)
    assert result["citations"], result["answer"]
    assert {c["document_id"] for c in result["citations"]} <= _documents(result)
    citation = result["citations"][0]
    assert citation["url"].startswith(f"/documents/{citation['document_id']}/?chunk=")
    answer = Message.objects.get(pk=result["message_id"])
    assert answer.timings_ms["retrieval_ms"] > 0 and answer.timings_ms["total_ms"] > 0


def test_question_the_documents_do_not_answer(library: World) -> None:
    result = _ask(library.alice, "What is the boiling point of tungsten?")
    assert result["status"] == Message.Status.NOT_FOUND
    assert result["answer"] == prompts.NOT_FOUND["en"]
    assert result["citations"] == []
    chinese = _ask(library.alice, "钨的沸点是多少度？")
    assert chinese["answer"] == prompts.NOT_FOUND["zh"]


def test_follow_up_uses_the_conversation(library: World) -> None:
    first = _ask(library.alice, "What is the refund window for Zephyr headphones?")
    conversation = Conversation.objects.get(pk=first["conversation_id"])
    follow_up = _ask(
        library.alice, "And for the Orion speakers?", conversation=conversation
    )
    assert follow_up["conversation_id"] == conversation.pk
    assert follow_up["standalone_question"] != "And for the Orion speakers?"
    assert library.orion.pk in _documents(follow_up)
    assert conversation.messages.count() == 4


def test_nobody_gets_passages_or_cached_answers_from_unreadable_collections(
    library: World,
) -> None:
    question = "What is the Nightingale acquisition budget?"
    alices = _ask(library.alice, question)
    assert library.nightingale.pk in _documents(alices)
    for user in (library.bob, library.charlie):
        for asked in (question, "How big is the budget for Nightingale?"):
            result = _ask(user, asked)
            assert library.nightingale.pk not in _documents(result), (user, asked)
            assert not any(
                c["document_id"] == library.nightingale.pk for c in result["citations"]
            )
            assert result["from_cache"] == ""
            assert "12 million" not in result["answer"]


def test_a_follow_ups_cached_answer_is_scoped_by_its_history_too(
    library: World,
) -> None:
    """alice asks about Nightingale (collection B), then follows up over A
    alone. The follow-up's rewritten question carries what B said, so its
    cached answer must not serve bob, who reads A only, asking the same."""
    first = _ask(library.alice, "What is the Nightingale acquisition budget?")
    conversation = Conversation.objects.get(pk=first["conversation_id"])
    assert {c for c, _version in history_sources(conversation, 10**12)} == {
        library.collection_b.pk
    }
    follow_up = _ask(
        library.alice,
        "And what is the refund window for Zephyr headphones?",
        conversation=conversation,
        collection_ids=(library.collection_a.pk,),
    )
    standalone = follow_up["standalone_question"]
    assert standalone != "And what is the refund window for Zephyr headphones?"
    bobs = _ask(library.bob, standalone, collection_ids=(library.collection_a.pk,))
    assert bobs["from_cache"] == ""


def test_revoked_grant_retires_answers_at_once(library: World) -> None:
    question = "What is the Nightingale acquisition budget?"
    grant = grant_set(
        collection=library.collection_b,
        user=library.bob,
        role=Role.VIEWER,
        actor=library.alice,
    )
    first = _ask(library.bob, question)
    assert library.nightingale.pk in _documents(first)
    assert _ask(library.bob, question)["from_cache"] == "exact"
    grant_revoke(grant=grant, actor=library.alice)
    after = _ask(library.bob, question)
    assert after["from_cache"] == ""
    assert library.nightingale.pk not in _documents(after)


def test_cache_tiers_and_retirement(library: World) -> None:
    question = "What is the refund window for Zephyr headphones?"
    first = _ask(library.alice, question)
    assert first["from_cache"] == ""
    assert (
        _ask(library.alice, "what is the refund window for zephyr headphones")[
            "from_cache"
        ]
        == "exact"
    )
    paraphrase = _ask(
        library.alice, "What's the refund window for the Zephyr headphones?"
    )
    assert paraphrase["from_cache"] == "semantic"
    assert paraphrase["answer"] == first["answer"]
    # bob reads exactly what alice's A-only scope would... but alice also reads
    # B, so their scopes differ: no sharing.
    assert _ask(library.bob, question)["from_cache"] == ""
    near_miss = _ask(library.alice, "What is the refund window for Orion speakers?")
    assert near_miss["from_cache"] == ""
    # A new document in A retires everything cached on A.
    upload = upload_bytes(
        library, library.collection_a, "note.txt", b"Office hours are 9 to 5."
    )
    wait_final([upload.document.pk], timeout=120)
    assert _ask(library.alice, question)["from_cache"] == ""
    stats = AnswerCache().stats()
    assert stats["exact"] >= 1 and stats["semantic"] >= 1 and stats["miss"] >= 3


def test_llm_down_still_returns_passages_and_is_not_cached(
    library: World, dead_llm_url: str
) -> None:
    question = "Can Orion speakers be returned?"
    failed = _ask(library.alice, question, llm=LLMClient(base_url=dead_llm_url))
    assert failed["status"] == "failed"
    assert "cannot be reached" in failed["error"]
    assert library.orion.pk in _documents(failed)
    assert Message.objects.get(pk=failed["message_id"]).status == "failed"
    retried = _ask(library.alice, question)
    assert retried["from_cache"] == ""
    assert retried["status"] == Message.Status.COMPLETE


def test_api_ask_json_and_stream(library: World) -> None:
    issued = token_create(user=library.bob, name="bob's bot")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    response = client.post(
        "/api/v1/ask/",
        {"question": "How long do I have to return Orion speakers?"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "complete" and library.orion.pk in _documents(body)
    streamed = client.post(
        "/api/v1/ask/",
        {"question": "Is a receipt needed for Zephyr refunds?", "stream": True},
        content_type="application/json",
    )
    assert streamed["Content-Type"].startswith("text/event-stream")
    text = b"".join(streamed.streaming_content).decode()
    events = [
        block.split("\n")[0].removeprefix("event: ")
        for block in text.split("\n\n")
        if block
    ]
    assert events[0] == "meta" and events[-1] == "done" and "token" in events
    done = json.loads(text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert done["status"] == "complete"
    # The conversation is bob's alone.
    mine = client.get("/api/v1/conversations/").json()
    assert body["conversation_id"] in {c["id"] for c in mine["results"]}
    alice = Client()
    alice.force_login(library.alice)
    assert (
        alice.get(f"/api/v1/conversations/{body['conversation_id']}/").status_code
        == 404
    )
    feedback = client.post(
        f"/api/v1/answers/{done['message_id']}/feedback/",
        {"helpful": False, "comment": "too short"},
        content_type="application/json",
    )
    assert feedback.status_code == 200
    assert (
        alice.post(
            f"/api/v1/answers/{done['message_id']}/feedback/",
            {"helpful": True},
            content_type="application/json",
        ).status_code
        == 404
    )


def test_summary_is_written_by_the_worker_and_shown_to_readers(library: World) -> None:
    import time

    from inference.models import DocumentSummary
    from inference.summaries import summary_request

    summary_request(document=library.zephyr)
    deadline = time.monotonic() + 180
    summary = DocumentSummary.objects.get(document=library.zephyr)
    while summary.status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
        summary.refresh_from_db()
    assert summary.status == "ready", summary.error
    assert summary.text.strip() and summary.progress == 100
    assert summary.document_version == library.zephyr.version
    bob = Client()
    bob.force_login(library.bob)
    assert (
        summary.text.strip()[:20]
        in bob.get(f"/documents/{library.zephyr.pk}/").content.decode()
    )
    assert (
        bob.get(f"/api/v1/documents/{library.zephyr.pk}/summary/").json()["status"]
        == "ready"
    )
    charlie = Client()
    charlie.force_login(library.charlie)
    assert (
        charlie.get(f"/api/v1/documents/{library.zephyr.pk}/summary/").status_code
        == 404
    )

"""What an answer is recorded as, and the ask queue that hands out the model.

An empty reply is a failure with its reason; a client that goes away leaves a
cancelled answer; neither is counted or cached as an answer. The queue lets
``ASK_CONCURRENCY`` answers use the model, tells the others their place, and
refuses past its bound with a time to retry.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from core.redis_pool import redis_client
from inference import queue as queue_module
from inference.cache import AnswerCache
from inference.llm import LLMClient
from inference.models import Message
from inference.queue import ALIVE_PREFIX, TICKETS, AskQueue, QueueFull, Turn
from inference.services import ask, collect
from tests.conftest import World
from tests.inference.conftest import FaultyLLM

QUESTION = "What is the refund window for Zephyr headphones?"


@pytest.fixture(autouse=True)
def _empty_queue() -> None:
    client = redis_client()
    client.delete(TICKETS, *client.keys(ALIVE_PREFIX + "*"))


def test_an_empty_reply_is_a_failure_with_its_reason(
    library: World, faulty_llm: type[FaultyLLM]
) -> None:
    faulty_llm.behaviour = "empty"
    result = collect(
        ask(user=library.alice, question=QUESTION, llm=LLMClient(faulty_llm.url))
    )
    assert result["status"] == "failed"
    assert "no text" in result["error"]
    assert library.zephyr.pk in {p["document_id"] for p in result["passages"]}
    stored = Message.objects.get(pk=result["message_id"])
    assert stored.status == Message.Status.FAILED and stored.error
    assert AnswerCache().stats()["exact"] == 0
    again = collect(
        ask(user=library.alice, question=QUESTION, llm=LLMClient(faulty_llm.url))
    )
    assert again["from_cache"] == ""


def test_the_failed_json_body_has_every_field_of_the_schema(
    library: World, faulty_llm: type[FaultyLLM], settings: Any
) -> None:
    from drf_spectacular.generators import SchemaGenerator

    faulty_llm.behaviour = "empty"
    settings.LLM_BASE_URL = faulty_llm.url
    client = Client()
    client.force_login(library.alice)
    body = client.post(
        "/api/v1/ask/", {"question": QUESTION}, content_type="application/json"
    ).json()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    required = set(schema["components"]["schemas"]["AskOutput"]["required"])
    assert body["status"] == "failed"
    assert required <= set(body), required - set(body)
    assert body["timings_ms"]["total_ms"] > 0


@pytest.mark.parametrize("leave_after", ["meta", "token"])
def test_a_client_that_goes_away_leaves_a_cancelled_answer(
    library: World, faulty_llm: type[FaultyLLM], leave_after: str
) -> None:
    faulty_llm.behaviour = "slow"
    events = ask(user=library.alice, question=QUESTION, llm=LLMClient(faulty_llm.url))
    for event in events:
        if event["event"] == leave_after:
            break
    events.close()  # what the server does when the connection drops
    answer = Message.objects.filter(role=Message.Role.ASSISTANT).latest("id")
    assert answer.status == Message.Status.CANCELLED
    assert AnswerCache().stats()["exact"] == 0
    # Its turn is given back: the queue is empty again.
    assert redis_client().zcard(TICKETS) == 0


def test_the_queue_tells_each_waiter_its_place(settings: Any) -> None:
    settings.ASK_CONCURRENCY = 1
    first = Turn()
    assert list(first.wait()) == []
    assert first.held
    queue = AskQueue()
    second, third = queue.join(), queue.join()
    assert second and third
    assert (queue.ahead(second), queue.ahead(third)) == (1, 2)
    first.release()
    assert (queue.ahead(second), queue.ahead(third)) == (0, 1)
    queue.leave(second, None)
    queue.leave(third, None)


def test_a_turn_of_a_stopped_process_is_given_up(settings: Any) -> None:
    settings.ASK_CONCURRENCY = 1
    queue = AskQueue()
    dead = queue.join()
    waiting = queue.join()
    assert dead and waiting
    assert queue.ahead(waiting) == 1
    # Its process stopped refreshing it: the key expires.
    queue_module._keeper.drop(dead)
    redis_client().delete(ALIVE_PREFIX + dead)
    assert queue.ahead(waiting) == 0
    assert redis_client().zscore(TICKETS, dead) is None
    queue.leave(waiting, None)


def test_past_its_bound_the_queue_refuses_with_a_time_to_retry(
    settings: Any, world: World
) -> None:
    settings.ASK_CONCURRENCY = 1
    settings.ASK_QUEUE_LIMIT = 1
    queue = AskQueue()
    tickets = [queue.join(), queue.join()]  # one answering, one waiting
    with pytest.raises(QueueFull) as refused:
        queue.admit()
    assert refused.value.retry_after >= 1
    client = Client()
    client.force_login(world.alice)
    api = client.post(
        "/api/v1/ask/", {"question": "Anything?"}, content_type="application/json"
    )
    assert api.status_code == 429
    assert int(api["Retry-After"]) >= 1
    assert "waiting" in api.json()["message"]
    portal = client.post("/ask/stream/", {"question": "Anything?"})
    assert portal.status_code == 429 and portal["Retry-After"]
    for ticket in tickets:
        assert ticket is not None
        queue.leave(ticket, None)
    assert Message.objects.filter(content="Anything?").count() == 0

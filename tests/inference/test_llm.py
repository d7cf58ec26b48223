"""The LLM client's deadlines and failures, against a real llama.cpp server
(working) and a local faulty server (hung, stalled, failing, dead)."""

from __future__ import annotations

import time

import pytest

from inference.llm import LLMClient, LLMError, LLMTimeouts

FAST = LLMTimeouts(connect=1.0, first_token=1.0, between_tokens=0.6, total=3.0)
MESSAGES = [{"role": "user", "content": "Say hello."}]


def test_real_server_streams_an_answer(llm_base_url: str) -> None:
    client = LLMClient(base_url=llm_base_url)
    pieces = list(client.stream_chat(MESSAGES, max_tokens=16))
    assert pieces and "".join(pieces).strip()
    assert client.count_tokens("Hello there, how are you?") > 3


def test_hung_server_fails_at_the_first_token_deadline(faulty_llm) -> None:
    faulty_llm.behaviour = "hang"
    started = time.monotonic()
    with pytest.raises(LLMError) as failure:
        list(
            LLMClient(base_url=faulty_llm.url, timeouts=FAST).stream_chat(
                MESSAGES, max_tokens=8
            )
        )
    assert failure.value.kind == "first_token_timeout"
    assert time.monotonic() - started < 2.5


def test_stream_that_stalls_fails_at_the_between_tokens_deadline(faulty_llm) -> None:
    faulty_llm.behaviour = "stall"
    received = []
    with pytest.raises(LLMError) as failure:
        for piece in LLMClient(base_url=faulty_llm.url, timeouts=FAST).stream_chat(
            MESSAGES, max_tokens=8
        ):
            received.append(piece)
    assert failure.value.kind == "stalled"
    assert received == ["word0 ", "word1 "]


def test_endless_stream_stops_at_the_total_deadline(faulty_llm) -> None:
    faulty_llm.behaviour = "slow"
    started = time.monotonic()
    with pytest.raises(LLMError) as failure:
        list(
            LLMClient(base_url=faulty_llm.url, timeouts=FAST).stream_chat(
                MESSAGES, max_tokens=8
            )
        )
    assert failure.value.kind == "total_timeout"
    assert time.monotonic() - started < FAST.total + 1.0


def test_server_error_and_dead_server_say_so(faulty_llm, dead_llm_url: str) -> None:
    faulty_llm.behaviour = "error"
    with pytest.raises(LLMError, match="refused the request") as failure:
        list(
            LLMClient(base_url=faulty_llm.url, timeouts=FAST).stream_chat(
                MESSAGES, max_tokens=8
            )
        )
    assert failure.value.kind == "http_error"
    with pytest.raises(LLMError, match="cannot be reached") as failure:
        list(
            LLMClient(base_url=dead_llm_url, timeouts=FAST).stream_chat(
                MESSAGES, max_tokens=8
            )
        )
    assert failure.value.kind == "unavailable"


def test_stopping_early_closes_the_connection(faulty_llm) -> None:
    """A client that goes away stops the generation: the server sees the
    connection closed."""
    faulty_llm.behaviour = "slow"
    stream = LLMClient(base_url=faulty_llm.url, timeouts=FAST).stream_chat(
        MESSAGES, max_tokens=8
    )
    assert next(stream) == "word0 "
    stream.close()
    assert faulty_llm.disconnected.wait(3)

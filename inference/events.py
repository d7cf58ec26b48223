"""The events of an answer, as ``inference.services.ask`` yields them and
every client of it (server-sent events, the OpenAI-compatible stream, MCP,
``collect``, the evaluation runner) reads them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class PassageDict(TypedDict):
    """A passage as events carry it (``dataclasses.asdict`` of a Passage)."""

    number: int
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    page: int | None
    section: str
    text: str
    url: str


class MetaEvent(TypedDict):
    """First: the conversation, the question as searched, the passages."""

    event: Literal["meta"]
    conversation_id: int
    standalone_question: str
    passages: list[PassageDict]
    question_id: NotRequired[int]
    from_cache: NotRequired[str]


class QueueEvent(TypedDict):
    """While the answer waits for the model: how many answers are ahead."""

    event: Literal["queue"]
    ahead: int
    message: str


class TokenEvent(TypedDict):
    """A piece of the answer's text."""

    event: Literal["token"]
    text: str


class DoneEvent(TypedDict):
    """Last, when an answer (or a decline) was stored."""

    event: Literal["done"]
    message_id: int
    conversation_id: int
    status: str
    answer: str
    answer_html: str
    citations: list[dict[str, Any]]
    from_cache: str
    timings_ms: dict[str, float]


class ErrorEvent(TypedDict):
    """Last, when the model failed; the passages were already sent."""

    event: Literal["error"]
    message: str
    message_id: int
    timings_ms: dict[str, float]


AnswerEvent = MetaEvent | QueueEvent | TokenEvent | DoneEvent | ErrorEvent

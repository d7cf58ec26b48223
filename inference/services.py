"""Asking: a question in, a cited answer out, as a stream of events.

``ask`` yields events for the browser and API clients:

- ``meta``: the conversation, the standalone question and the passages found;
- ``token``: a piece of the answer;
- ``done``: the saved answer with its citations (and whether it came from the cache);
- ``error``: the LLM failed; the passages were already sent, the message says why.

Retrieval goes through ``kb.search.search_chunks`` (the permission filter is
inside its SQL). No database connection is held while the model writes: it
is closed before the stream starts and opened again to save the answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ApiToken, User
from core.inputs import has_nul
from core.metrics import observe_answer
from inference import prompts
from inference.budget import answer_prompt, source_budget
from inference.cache import AnswerCache, CachedAnswer, scope_key
from inference.citations import citations_for, is_ungrounded
from inference.declines import is_decline, may_become_decline
from inference.events import AnswerEvent, DoneEvent, PassageDict
from inference.llm import LLMClient, LLMError, estimate_tokens
from inference.models import Conversation, Message
from inference.passages import Passage, choose_passages
from inference.queue import AskQueue, Turn, position_message
from inference.relevance import relevant_hits
from inference.rendering import answer_html
from inference.speed import first_token_deadline, record_prompt_speed
from kb.index import active_index
from kb.models import Action, Chunk, Collection
from kb.search import (
    SearchFilters,
    chunk_url,
    dense_weight,
    search_chunks,
)

logger = logging.getLogger(__name__)

QUESTION_MAX_CHARS = 2000
HISTORY_TURNS = 3


class AskError(Exception):
    """Bad input; the message is for the user."""


NUL_REFUSED = gettext_lazy(
    "The text contains a NUL character, which no question or field may hold."
)


def readable_collections(
    user: User, token: ApiToken | None, collection_ids: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(id, version) of every collection the asker may read, narrowed to
    ``collection_ids`` when given."""
    queryset = Collection.objects.for_user(user, Action.VIEW, token=token)
    if collection_ids:
        queryset = queryset.filter(pk__in=collection_ids)
    return list(queryset.values_list("pk", "version"))


def readable_chunk_ids(
    user: User, token: ApiToken | None, chunk_ids: list[int]
) -> set[int]:
    """Which of these chunks the asker may read now (one SQL statement)."""
    if not chunk_ids:
        return set()
    permitted = Collection.objects.for_user(user, Action.VIEW, token=token).values("pk")
    return set(
        Chunk.objects.filter(pk__in=chunk_ids, collection_id__in=permitted).values_list(
            "pk", flat=True
        )
    )


def conversation_start(
    *, user: User, question: str, token: ApiToken | None = None
) -> Conversation:
    return Conversation.objects.create(
        user=user, title=question.strip()[:120], api_token=token
    )


def _history_messages(conversation: Conversation, before_id: int) -> list[Message]:
    messages = list(
        conversation.messages.filter(pk__lt=before_id)
        .exclude(status=Message.Status.FAILED)
        .order_by("-id")[: HISTORY_TURNS * 2]
    )
    return messages[::-1]


def history_sources(
    conversation: Conversation, before_id: int
) -> list[tuple[int, int]]:
    """(id, version) of the collections whose passages the stored history's
    answers were drawn from: a follow-up rewritten from that history carries
    what they said, so its cached answer is scoped by them too."""
    return _sources_of(_history_messages(conversation, before_id))


def _sources_of(messages: list[Message]) -> list[tuple[int, int]]:
    chunk_ids = [
        chunk_id for message in messages for chunk_id in message.passages or []
    ]
    if not chunk_ids:
        return []
    return list(
        Collection.objects.filter(
            pk__in=Chunk.objects.filter(pk__in=chunk_ids).values("collection_id")
        ).values_list("pk", "version")
    )


def standalone_question(
    llm: LLMClient, history: list[tuple[str, str]], follow_up: str
) -> str:
    """The follow-up as a question that stands alone, written by the model;
    if the model fails, the previous question and the follow-up together
    (retrieval still sees the conversation's subject)."""
    if not history:
        return follow_up
    previous = next((text for role, text in reversed(history) if role == "user"), "")
    try:
        rewritten = llm.complete(
            prompts.rewrite_messages(history, follow_up), max_tokens=96, temperature=0.0
        ).strip()
    except LLMError as exc:
        logger.warning("Rewriting a follow-up failed: %s", exc)
        rewritten = ""
    rewritten = rewritten.splitlines()[0].strip() if rewritten else ""
    if len(rewritten) < 3 or len(rewritten) > QUESTION_MAX_CHARS:
        return f"{previous} {follow_up}".strip()
    # Keep the follow-up's own words in the query too: a small model may drop them.
    if follow_up.casefold() not in rewritten.casefold():
        return f"{rewritten} {follow_up}"
    return rewritten


def _sources(passages: list[Passage]) -> list[prompts.SourceText]:
    return [
        prompts.SourceText(p.number, p.title, p.page, p.section, p.text)
        for p in passages
    ]


def ask(
    *,
    user: User,
    question: str,
    conversation: Conversation | None = None,
    token: ApiToken | None = None,
    collection_ids: tuple[int, ...] = (),
    llm: LLMClient | None = None,
    use_cache: bool = True,
    history: list[tuple[str, str]] | None = None,
    wait_when_busy: bool = False,
) -> Iterator[AnswerEvent]:
    """Answer ``question`` for ``user`` as a stream of events (see the module).
    ``history`` (role, text) replaces the conversation's stored turns, for
    stateless clients that send the whole dialogue each time.
    Bad input raises AskError, and a full ask queue QueueFull (unless
    ``wait_when_busy``, for background work), here, before any event (and
    any HTTP status) is sent."""
    question = (question or "").strip()
    if not question:
        raise AskError(_("Ask a question first."))
    if len(question) > QUESTION_MAX_CHARS:
        raise AskError(
            _("A question can be at most %(limit)d characters long.")
            % {"limit": QUESTION_MAX_CHARS}
        )
    if has_nul(question, *(text for _role, text in history or [])):
        raise AskError(str(NUL_REFUSED))
    queue = AskQueue()
    if not wait_when_busy:
        queue.admit()
    return _answer_events(
        user=user,
        question=question,
        conversation=conversation,
        token=token,
        collection_ids=collection_ids,
        llm=llm or LLMClient(),
        use_cache=use_cache,
        history=history,
        turn=Turn(queue),
    )


def _answer_events(*, turn: Turn, **kwargs: Any) -> Iterator[AnswerEvent]:
    """The answer's events; its place in the ask queue is given up at the end,
    also when the client goes away."""
    try:
        yield from _answer_events_in_turn(turn=turn, **kwargs)
    finally:
        turn.release()


def _queue_events(turn: Turn) -> Iterator[AnswerEvent]:
    """Wait for the model, telling the asker their place meanwhile."""
    for ahead in turn.wait():
        yield {
            "event": "queue",
            "ahead": ahead,
            "message": position_message(ahead),
        }


def _answer_events_in_turn(
    *,
    user: User,
    question: str,
    conversation: Conversation | None,
    token: ApiToken | None,
    collection_ids: tuple[int, ...],
    llm: LLMClient,
    use_cache: bool,
    history: list[tuple[str, str]] | None,
    turn: Turn,
) -> Iterator[AnswerEvent]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if conversation is None:
        conversation = conversation_start(user=user, question=question, token=token)
    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question
    )
    # The stored turns, read once: the rewrite's history and the cache's scope.
    stored = _history_messages(conversation, asked.pk) if history is None else []
    if history is None:
        history = [(m.role, m.content) for m in stored]
    language = prompts.question_language(question)

    if history:
        # The model may be slow to rewrite: no connection is held meanwhile.
        # Without history nothing waits, and the connection is kept: a new
        # one costs a server process, whose caches start cold, before search.
        connection.close()
        yield from _queue_events(turn)
    standalone = standalone_question(llm, history, question)
    timings["rewrite_ms"] = (time.perf_counter() - started) * 1000
    if standalone != question:
        Message.objects.filter(pk=asked.pk).update(standalone_question=standalone)

    cache = AnswerCache() if use_cache else None
    scope = ""  # the cache's: which collections, at which versions, answered
    vector = cache_vector = None
    vector_model: str | None = None
    if cache is not None:
        from kb.index import index_embedder

        index = active_index()  # read once: the cache scope and the query vector
        scope_collections = readable_collections(user, token, collection_ids)
        if stored and standalone != question:
            scope_collections = sorted(
                set(scope_collections) | set(_sources_of(stored))
            )
        scope = scope_key(scope_collections, embedding_model=index.model_name)
        embedder = index_embedder(index)
        vector = embedder.encode_query(standalone)
        vector_model = embedder.model_name
        # The semantic tier only where the model reads the language: an
        # English model maps all Chinese questions close together.
        cache_vector = vector if dense_weight(standalone, vector_model) > 0 else None
        cached = cache.get(scope, standalone, cache_vector)
        if cached is not None:
            yield from _serve_cached(
                cached, user, token, conversation, standalone, timings, started
            )
            return

    retrieval_started = time.perf_counter()
    result = search_chunks(
        user=user,
        query=standalone,
        limit=settings.ANSWER_PASSAGES,
        token=token,
        filters=SearchFilters(collection_ids=collection_ids),
        query_vector=vector,
        query_model=vector_model,
    )
    timings["retrieval_ms"] = (time.perf_counter() - retrieval_started) * 1000
    relevant = relevant_hits(standalone, result, timings)
    candidates = [
        Passage(
            number=index,
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            collection_id=hit.collection_id,
            title=hit.document_title,
            page=hit.page,
            section=hit.section_title,
            text=hit.text,
            url=chunk_url(hit.document_id, hit.chunk_id, hit.page),
        )
        for index, hit in enumerate(relevant, start=1)
    ]
    terms = relevant[0].terms if relevant else ()
    passages = choose_passages(candidates, source_budget(standalone), terms)
    try:
        yield {
            "event": "meta",
            "conversation_id": conversation.pk,
            "question_id": asked.pk,
            "standalone_question": standalone,
            "passages": [p.as_event() for p in passages],
        }
        if passages:
            # Nothing from the database is needed while waiting and answering.
            connection.close()
            yield from _queue_events(turn)
            timings["queue_ms"] = turn.waited_seconds * 1000
    except GeneratorExit:
        # The client went away before the model began: recorded as cancelled.
        _save_answer(
            conversation,
            prompts.LLM_FAILED[language].format(reason=_("cancelled")),
            Message.Status.CANCELLED,
            [],
            [p.chunk_id for p in passages],
            timings,
            started,
            error=_("The client went away before the answer began."),
        )
        raise
    if not passages:
        answer = prompts.NOT_FOUND[language]
        yield {"event": "token", "text": answer}
        message = _save_answer(
            conversation, answer, Message.Status.NOT_FOUND, [], [], timings, started
        )
        yield _done(message)
        return

    messages = answer_prompt(standalone, _sources(passages), language)
    prompt_tokens = estimate_tokens("\n".join(m["content"] for m in messages))
    pieces: list[str] = []
    held = ""  # text held back while it may still be the decline marker
    generation_started = time.perf_counter()
    status = Message.Status.CANCELLED
    error = ""
    try:
        stream = llm.stream_chat(
            messages,
            max_tokens=settings.ANSWER_MAX_TOKENS,
            temperature=settings.ANSWER_TEMPERATURE,
            first_token_timeout=first_token_deadline(prompt_tokens),
        )
        for piece in stream:
            if not pieces:
                timings["first_token_ms"] = (time.perf_counter() - started) * 1000
                record_prompt_speed(
                    prompt_tokens, time.perf_counter() - generation_started
                )
            pieces.append(piece)
            held += piece
            if may_become_decline(held):
                continue
            yield {"event": "token", "text": held}
            held = ""
        status = Message.Status.COMPLETE
    except LLMError as exc:
        status = Message.Status.FAILED
        error = str(exc)
        logger.warning("Answer failed (%s): %s", exc.kind, exc)
    finally:
        # Also reached when the client went away (GeneratorExit): the answer
        # is saved as cancelled and never cached.
        timings["generation_ms"] = (time.perf_counter() - generation_started) * 1000
        answer = "".join(pieces).strip()
        citations: list[dict[str, Any]] = []
        if status == Message.Status.COMPLETE and not answer:
            # An empty reply is no answer: it is never shown, counted or
            # cached as one.
            status = Message.Status.FAILED
            error = _("The language model returned no text.")
        if status == Message.Status.COMPLETE and is_decline(answer):
            status = Message.Status.NOT_FOUND
            answer = prompts.NOT_FOUND[language]
        elif status != Message.Status.COMPLETE and not answer:
            answer = prompts.LLM_FAILED[language].format(reason=error or "cancelled")
        if status in (Message.Status.COMPLETE, Message.Status.CANCELLED):
            readable = readable_chunk_ids(user, token, [p.chunk_id for p in passages])
            citations = citations_for(answer, passages, readable)
        if status == Message.Status.COMPLETE and is_ungrounded(
            answer, standalone, passages, citations
        ):
            # Never a general-knowledge answer dressed up as the documents'.
            logger.info("Declined an answer not drawn from its passages")
            status = Message.Status.NOT_FOUND
            answer = prompts.NOT_FOUND[language]
            citations = []
        message = _save_answer(
            conversation,
            answer,
            status,
            citations,
            [p.chunk_id for p in passages],
            timings,
            started,
            error=error,
        )
    if status == Message.Status.NOT_FOUND:
        if held or not pieces:
            yield {"event": "token", "text": answer}
        yield _done(message)
        return
    if held:
        yield {"event": "token", "text": held}
    if status == Message.Status.FAILED:
        yield {
            "event": "error",
            "message": prompts.LLM_FAILED[language].format(reason=error),
            "message_id": message.pk,
            "timings_ms": message.timings_ms,
        }
        return
    if cache is not None and answer and status == Message.Status.COMPLETE:
        cache.put(
            scope,
            standalone,
            cache_vector,
            CachedAnswer(answer, citations, [asdict(p) for p in passages], standalone),
        )
    yield _done(message)


def _serve_cached(
    cached: CachedAnswer,
    user: User,
    token: ApiToken | None,
    conversation: Conversation,
    standalone: str,
    timings: dict[str, float],
    started: float,
) -> Iterator[AnswerEvent]:
    # The scope already guarantees the asker could read every passage; the
    # check is repeated so a cache bug can never leak one.
    readable = readable_chunk_ids(user, token, [p["chunk_id"] for p in cached.passages])
    passages = [
        cast(PassageDict, p) for p in cached.passages if p["chunk_id"] in readable
    ]
    citations = [c for c in cached.citations if c["chunk_id"] in readable]
    yield {
        "event": "meta",
        "conversation_id": conversation.pk,
        "standalone_question": standalone,
        "passages": passages,
        "from_cache": cached.tier,
    }
    yield {"event": "token", "text": cached.answer}
    timings["first_token_ms"] = (time.perf_counter() - started) * 1000
    message = _save_answer(
        conversation,
        cached.answer,
        Message.Status.COMPLETE,
        citations,
        [p["chunk_id"] for p in passages],
        timings,
        started,
        from_cache=cached.tier,
    )
    yield _done(message)


def _save_answer(
    conversation: Conversation,
    answer: str,
    status: str,
    citations: list[dict[str, Any]],
    passage_ids: list[int],
    timings: dict[str, float],
    started: float,
    *,
    error: str = "",
    from_cache: str = "",
) -> Message:
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    observe_answer(timings, status=status, cached=bool(from_cache))
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=answer,
            status=status,
            error=error[:2000],
            citations=citations,
            passages=passage_ids,
            from_cache=from_cache,
            timings_ms={key: round(value, 1) for key, value in timings.items()},
        )
        Conversation.objects.filter(pk=conversation.pk).update(
            updated_at=message.created_at
        )
    return message


def _done(message: Message) -> DoneEvent:
    return {
        "event": "done",
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": message.status,
        "answer": message.content,
        "answer_html": answer_html(message.content, message.citations),
        "citations": message.citations,
        "from_cache": message.from_cache,
        "timings_ms": message.timings_ms,
    }


def collect(events: Iterator[AnswerEvent]) -> dict[str, Any]:
    """``ask``'s events run to the end: one result for clients that do not stream."""
    result: dict[str, Any] = {
        "passages": [],
        "error": None,
        "answer": "",
        "answer_html": "",
        "citations": [],
        "from_cache": "",
        "timings_ms": {},
    }
    for event in events:
        if event["event"] == "meta":
            result.update(
                conversation_id=event["conversation_id"],
                standalone_question=event["standalone_question"],
                passages=event["passages"],
            )
        elif event["event"] == "done":
            result.update({k: v for k, v in event.items() if k != "event"})
        elif event["event"] == "error":
            result.update(
                error=event["message"],
                message_id=event["message_id"],
                status="failed",
                timings_ms=event["timings_ms"],
            )
    return result

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
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from accounts.models import ApiToken, User
from config.metrics import observe_answer
from inference import prompts
from inference.cache import AnswerCache, CachedAnswer, scope_key
from inference.llm import LLMClient, LLMError, estimate_tokens
from inference.models import Conversation, Feedback, Message
from kb.index import active_index
from kb.models import Action, Chunk, Collection
from kb.search import (
    SearchFilters,
    SearchHit,
    chunk_url,
    dense_weight,
    search_chunks,
)

logger = logging.getLogger(__name__)

QUESTION_MAX_CHARS = 2000
# A passage is relevant enough to answer from when its meaning is close to
# the question's, or when it holds most of the question's informative words.
MIN_SIMILARITY = 0.45
MIN_LEXICAL_COVERAGE = 0.6
HISTORY_TURNS = 3
_CITATION = re.compile(r"\[(\d{1,2})\]")


class AskError(Exception):
    """Bad input; the message is for the user."""


@dataclass(frozen=True)
class Passage:
    number: int
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    page: int | None
    section: str
    text: str
    url: str


def _is_relevant(hit: SearchHit) -> bool:
    return (hit.similarity is not None and hit.similarity >= MIN_SIMILARITY) or (
        hit.lexical_coverage is not None
        and hit.lexical_coverage >= MIN_LEXICAL_COVERAGE
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


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = title.strip()
    if not title:
        raise AskError("A conversation needs a title.")
    conversation.title = title[:200]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def feedback_set(
    *, message: Message, user: User, helpful: bool, comment: str = ""
) -> Feedback:
    if (
        message.role != Message.Role.ASSISTANT
        or message.conversation.user_id != user.pk
    ):
        raise AskError("Feedback can only be given on your own answers.")
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        user=user,
        defaults={"helpful": helpful, "comment": comment.strip()[:2000]},
    )
    return feedback


def _history(conversation: Conversation, before_id: int) -> list[tuple[str, str]]:
    messages = list(
        conversation.messages.filter(pk__lt=before_id)
        .exclude(status=Message.Status.FAILED)
        .order_by("-id")[: HISTORY_TURNS * 2]
    )
    return [(m.role, m.content) for m in reversed(messages)]


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


def fit_passages(
    llm: LLMClient, question: str, passages: list[Passage], language: str
) -> list[Passage]:
    """Drop the lowest-ranked passages until the prompt and the answer fit
    the model's context window (counted with the model's tokenizer)."""
    budget = settings.LLM_MAX_CONTEXT - settings.ANSWER_MAX_TOKENS - 64
    kept = list(passages)
    while kept:
        messages = prompts.answer_messages(question, _sources(kept), language)
        text = "\n".join(m["content"] for m in messages)
        # Cheap estimate first; the tokenizer only when it might not fit.
        if estimate_tokens(text) <= budget or llm.count_tokens(text) <= budget:
            return kept
        kept.pop()
    return kept


def _sources(passages: list[Passage]) -> list[prompts.SourceText]:
    return [
        prompts.SourceText(p.number, p.title, p.page, p.section, p.text)
        for p in passages
    ]


_CONTENT_WORD = re.compile(r"[^\W_]{3,}|[\u4e00-\u9fff]", re.UNICODE)
# Share of an answer's words a passage must hold to be credited when the
# model wrote no [n] markers (small models often forget them).
ATTRIBUTION_MIN_OVERLAP = 0.5


def _attributed_numbers(answer: str, passages: list[Passage]) -> list[int]:
    """The passages an answer without markers was drawn from: those holding
    most of its words."""
    words = {w.casefold() for w in _CONTENT_WORD.findall(answer)}
    if not words:
        return []
    numbers = []
    for passage in passages:
        held = words & {w.casefold() for w in _CONTENT_WORD.findall(passage.text)}
        if len(held) / len(words) >= ATTRIBUTION_MIN_OVERLAP:
            numbers.append(passage.number)
    return numbers


def _citations(
    answer: str, passages: list[Passage], readable: set[int]
) -> list[dict[str, Any]]:
    by_number = {p.number: p for p in passages}
    cited: list[dict[str, Any]] = []
    numbers = [int(n) for n in _CITATION.findall(answer)] or _attributed_numbers(
        answer, passages
    )
    for number in dict.fromkeys(numbers):
        passage = by_number.get(number)
        if passage is None or passage.chunk_id not in readable:
            continue
        cited.append(
            {
                "n": passage.number,
                "chunk_id": passage.chunk_id,
                "document_id": passage.document_id,
                "collection_id": passage.collection_id,
                "title": passage.title,
                "page": passage.page,
                "url": passage.url,
            }
        )
    return cited


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
) -> Iterator[dict[str, Any]]:
    """Answer ``question`` for ``user`` as a stream of events (see the module).
    ``history`` (role, text) replaces the conversation's stored turns, for
    stateless clients that send the whole dialogue each time.
    Bad input raises AskError here, before any event (and any HTTP status) is sent."""
    question = (question or "").strip()
    if not question:
        raise AskError("Ask a question first.")
    if len(question) > QUESTION_MAX_CHARS:
        raise AskError(
            f"A question can be at most {QUESTION_MAX_CHARS} characters long."
        )
    return _answer_events(
        user=user,
        question=question,
        conversation=conversation,
        token=token,
        collection_ids=collection_ids,
        llm=llm or LLMClient(),
        use_cache=use_cache,
        history=history,
    )


def _answer_events(
    *,
    user: User,
    question: str,
    conversation: Conversation | None,
    token: ApiToken | None,
    collection_ids: tuple[int, ...],
    llm: LLMClient,
    use_cache: bool,
    history: list[tuple[str, str]] | None,
) -> Iterator[dict[str, Any]]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if conversation is None:
        conversation = conversation_start(user=user, question=question, token=token)
    asked = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=question
    )
    if history is None:
        history = _history(conversation, asked.pk)
    language = prompts.question_language(question)

    # The model may be slow to rewrite: no connection is held meanwhile.
    connection.close()
    standalone = standalone_question(llm, history, question)
    timings["rewrite_ms"] = (time.perf_counter() - started) * 1000
    if standalone != question:
        Message.objects.filter(pk=asked.pk).update(standalone_question=standalone)

    index = active_index()  # read once: the cache scope and the query vector
    scope = scope_key(
        readable_collections(user, token, collection_ids),
        embedding_model=index.model_name,
    )
    cache = AnswerCache() if use_cache else None
    vector = cache_vector = None
    vector_model: str | None = None
    if cache is not None:
        from kb.index import index_embedder

        embedder = index_embedder(index)
        vector = embedder.encode([standalone])[0]
        vector_model = embedder.model_name
        # The semantic tier only where the model reads the language: an
        # English model maps all Chinese questions close together.
        cache_vector = vector if dense_weight(standalone) > 0 else None
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
    relevant = [hit for hit in result.hits if _is_relevant(hit)]
    passages = [
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
    if passages:
        passages = fit_passages(llm, standalone, passages, language)
    yield {
        "event": "meta",
        "conversation_id": conversation.pk,
        "question_id": asked.pk,
        "standalone_question": standalone,
        "passages": [asdict(p) for p in passages],
    }
    if not passages:
        answer = prompts.NOT_FOUND[language]
        yield {"event": "token", "text": answer}
        message = _save_answer(
            conversation, answer, Message.Status.NOT_FOUND, [], [], timings, started
        )
        yield _done(message)
        return

    # Nothing from the database is needed until the answer is complete.
    connection.close()
    pieces: list[str] = []
    generation_started = time.perf_counter()
    status = Message.Status.CANCELLED
    error = ""
    try:
        stream = llm.stream_chat(
            prompts.answer_messages(standalone, _sources(passages), language),
            max_tokens=settings.ANSWER_MAX_TOKENS,
            temperature=settings.ANSWER_TEMPERATURE,
        )
        for piece in stream:
            if not pieces:
                timings["first_token_ms"] = (time.perf_counter() - started) * 1000
            pieces.append(piece)
            yield {"event": "token", "text": piece}
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
        if status != Message.Status.COMPLETE:
            answer = answer or prompts.LLM_FAILED[language].format(
                reason=error or "cancelled"
            )
        readable = readable_chunk_ids(user, token, [p.chunk_id for p in passages])
        citations = _citations(answer, passages, readable)
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
    if status == Message.Status.FAILED:
        yield {
            "event": "error",
            "message": prompts.LLM_FAILED[language].format(reason=error),
            "message_id": message.pk,
        }
        return
    if cache is not None and answer:
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
) -> Iterator[dict[str, Any]]:
    # The scope already guarantees the asker could read every passage; the
    # check is repeated so a cache bug can never leak one.
    readable = readable_chunk_ids(user, token, [p["chunk_id"] for p in cached.passages])
    passages = [p for p in cached.passages if p["chunk_id"] in readable]
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


def _done(message: Message) -> dict[str, Any]:
    return {
        "event": "done",
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": message.status,
        "answer": message.content,
        "citations": message.citations,
        "from_cache": message.from_cache,
        "timings_ms": message.timings_ms,
    }


def collect(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """``ask``'s events run to the end: one result for clients that do not stream."""
    result: dict[str, Any] = {"passages": [], "error": None}
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
                error=event["message"], message_id=event["message_id"], status="failed"
            )
    return result

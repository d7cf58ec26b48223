"""Running a question set through the real ask path, as a chosen user.

Questions go through ``inference.services.ask`` exactly as a user's do (the
permission filter, the passage choice, the prompt, the decline, the
citation check), without the answer cache unless asked for. Each question is
asked on its own, with no conversation history. Retrieval is scored with the
same search the ask path uses, as the same user, on the same collections.

A run is resumable: each question's row is filled in once, so a run that
stopped (a worker restart, a time slice that ended) goes on where it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from inference import prompts
from inference.budget import replayed_prompt
from inference.evaluation.metrics import aggregate, question_scores
from inference.evaluation.sets import SetQuestion
from inference.events import PassageDict
from inference.llm import LLMClient, LLMError
from inference.models import Conversation, EvaluationResult, EvaluationRun
from inference.relevance import reader, reader_status
from inference.services import ask
from kb.index import active_index
from kb.models import Document
from kb.search import SearchFilters, search_chunks

logger = logging.getLogger(__name__)

RETRIEVAL_DEPTH = 30
Progress = Callable[[EvaluationRun], None]


def run_create(
    *,
    name: str,
    question_set: str,
    questions: Sequence[SetQuestion],
    asker: User,
    collection_ids: Iterable[int] = (),
    created_by: User | None = None,
    overhead_sample: int = 0,
) -> EvaluationRun:
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            name=name[:200],
            question_set=question_set[:500],
            synthetic=any(q.synthetic for q in questions),
            asker=asker,
            created_by=created_by,
            collection_ids=sorted(set(collection_ids)),
            total=len(questions),
            overhead_sample=min(overhead_sample, len(questions)),
        )
        EvaluationResult.objects.bulk_create(
            EvaluationResult(
                run=run,
                position=position,
                question=item.question,
                expected_answers=list(item.answers),
                expected_documents=list(item.documents),
                answerable=item.answerable,
            )
            for position, item in enumerate(questions)
        )
    return run


def configuration() -> dict[str, Any]:
    """What decides the answers, recorded with every run."""
    return {
        "llm_model": settings.LLM_MODEL,
        "llm_server": settings.LLM_BASE_URL,
        "prompt_version": prompts.PROMPT_VERSION,
        "embedding_model": active_index().model_name,
        "answer_context_tokens": settings.ANSWER_CONTEXT_TOKENS,
        "answer_passages": settings.ANSWER_PASSAGES,
        "answer_max_tokens": settings.ANSWER_MAX_TOKENS,
        "answer_temperature": settings.ANSWER_TEMPERATURE,
        # Waits for the reader: every question of the run is judged alike.
        "answer_reader": reader_status(),
    }


def _claim(run_id: int) -> EvaluationRun | None:
    claimed = EvaluationRun.objects.filter(
        pk=run_id,
        status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING],
    ).update(status=EvaluationRun.Status.RUNNING)
    if not claimed:
        return None
    run = EvaluationRun.objects.get(pk=run_id)
    if not run.configuration:
        run.configuration = configuration()
        run.save(update_fields=["configuration"])
    return run


def run_execute(
    *,
    run_id: int,
    llm: LLMClient | None = None,
    progress: Progress | None = None,
    time_budget_seconds: float | None = None,
    use_cache: bool = False,
) -> bool:
    """Answer the run's remaining questions; True once the run is finished.
    With ``time_budget_seconds`` it stops after the question that passes the
    budget and returns False (the caller runs it again)."""
    # Every question of the run is judged alike: not some before the reader
    # has loaded and the rest after.
    reader(wait=True)
    run = _claim(run_id)
    if run is None:
        return True
    if run.asker is None:
        _finish(run, error="The user the run asks as no longer exists.")
        return True
    started = time.monotonic()
    client = llm or LLMClient()
    conversation = Conversation.objects.create(
        user=run.asker, title=f"Evaluation: {run.name}"[:200]
    )
    # The prompt the LLM server read last: its prefix is what the server
    # holds when the next question comes.
    last_prompt: list[dict[str, str]] | None = None
    try:
        for result in run.results.filter(answered=False).order_by("position"):
            held_before = last_prompt
            prompt = _answer_one(
                run, run.asker, result, conversation, client, use_cache
            )
            if prompt is not None:
                last_prompt = prompt
                if result.position < run.overhead_sample:
                    _measure_direct(client, result, prompt, held_before)
            run.done += 1
            EvaluationRun.objects.filter(pk=run.pk).update(done=run.done)
            if progress is not None:
                progress(run)
            if (
                time_budget_seconds is not None
                and time.monotonic() - started > time_budget_seconds
            ):
                return False
    except Exception as exc:
        logger.exception("Evaluation run %s failed", run.pk)
        _finish(run, error=str(exc) or exc.__class__.__name__)
        return True
    finally:
        conversation.delete()
    _finish(run)
    return True


def _finish(run: EvaluationRun, *, error: str = "") -> None:
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in run.results.values(
            "scores",
            "answerable",
            "first_token_ms",
            "total_ms",
            "direct_first_token_ms",
        )
    ]
    run.metrics = aggregate(rows)
    run.status = EvaluationRun.Status.FAILED if error else EvaluationRun.Status.COMPLETE
    run.error = error
    run.finished_at = timezone.now()
    run.save(update_fields=["metrics", "status", "error", "finished_at"])


def _answer_one(
    run: EvaluationRun,
    asker: User,
    result: EvaluationResult,
    conversation: Conversation,
    llm: LLMClient,
    use_cache: bool,
) -> list[dict[str, str]] | None:
    """Ask one question and score it; the prompt it was answered from."""
    collection_ids = tuple(run.collection_ids)
    passages: list[PassageDict] = []
    standalone = result.question
    done: dict[str, Any] = {}
    for event in ask(
        user=asker,
        question=result.question,
        conversation=conversation,
        collection_ids=collection_ids,
        llm=llm,
        use_cache=use_cache,
        history=[],
        wait_when_busy=True,
    ):
        if event["event"] == "meta":
            passages = event["passages"]
            standalone = event["standalone_question"]
        elif event["event"] == "done":
            done = dict(event)
        elif event["event"] == "error":
            done = {"status": "failed", "answer": event["message"], "citations": []}
    text_by_chunk = {p["chunk_id"]: p["text"] for p in passages}
    citations = done.get("citations") or []
    ranked = (
        ranked_documents(asker, result.question, collection_ids, result)
        if result.expected_documents
        else []
    )
    timings = done.get("timings_ms") or {}
    result.status = done.get("status", "failed")
    result.answer = done.get("answer", "")
    result.citations = citations
    result.retrieved_documents = ranked[:10]
    result.first_token_ms = timings.get("first_token_ms")
    result.total_ms = timings.get("total_ms")
    result.scores = question_scores(
        status=result.status,
        answer=result.answer,
        gold=result.expected_answers,
        answerable=result.answerable,
        cited_texts=[text_by_chunk.get(c["chunk_id"], "") for c in citations],
        ranked_documents=ranked,
        expected_documents={_key(d) for d in result.expected_documents},
        had_passages=bool(passages),
    )
    result.answered = True
    result.save()
    if result.status not in ("complete", "not_found") or not passages:
        return None
    return replayed_prompt(standalone, passages, prompts.question_language(standalone))


def _key(value: str) -> str:
    return value.strip().casefold()


def ranked_documents(
    user: User, query: str, collection_ids: tuple[int, ...], result: EvaluationResult
) -> list[str]:
    """The documents search finds for ``query``, best first, each named by
    the expected document it is (matched by title, file name with or
    without its extension, or id), else by its id."""
    hits = search_chunks(
        user=user,
        query=query,
        limit=RETRIEVAL_DEPTH,
        filters=SearchFilters(collection_ids=collection_ids),
    ).hits
    expected = {_key(d) for d in result.expected_documents}
    document_ids = list(dict.fromkeys(hit.document_id for hit in hits))
    names = {
        pk: (title, filename)
        for pk, title, filename in Document.objects.filter(
            pk__in=document_ids
        ).values_list("pk", "title", "original_filename")
    }
    ranked: list[str] = []
    for pk in document_ids:
        title, filename = names.get(pk, ("", ""))
        keys = {str(pk), _key(title), _key(filename), _key(Path(filename).stem)}
        matched = sorted(keys & expected)
        key = matched[0] if matched else f"document:{pk}"
        if key not in ranked:
            ranked.append(key)
    return ranked


def _measure_direct(
    llm: LLMClient,
    result: EvaluationResult,
    messages: list[dict[str, str]],
    held_before: list[dict[str, str]] | None,
) -> None:
    """The LLM server's own time to first token on the prompt ``result`` was
    answered from, timed from the same state: the prompt the server read
    before the platform's request is sent again first, so the server holds
    the same prefix it held then."""
    try:
        if held_before is not None:
            _first_token(llm, held_before)
        elapsed = _first_token(llm, messages)
    except LLMError as exc:
        logger.warning("Measuring the LLM server's own first token failed: %s", exc)
        return
    result.direct_first_token_ms = round(elapsed * 1000, 1)
    result.save(update_fields=["direct_first_token_ms"])


def _first_token(llm: LLMClient, messages: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for _piece in llm.stream_chat(messages, max_tokens=1, temperature=0.0):
        break
    return time.perf_counter() - started

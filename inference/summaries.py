"""Document summaries: map-reduce over the document's chunks with the LLM.

Parts of the document that fit the model's window are summarised one by one
(map), then the partial summaries are combined (reduce, repeated while they
do not fit). Progress is stored on the summary row as it goes; no database
transaction is open while the model writes.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.tasks import enqueue_on_commit
from inference import prompts
from inference.llm import LLMClient, LLMError, estimate_tokens
from inference.models import DocumentSummary
from inference.queue import model_turn
from kb.models import Document

logger = logging.getLogger(__name__)

SUMMARY_WORDS = 200
# A queued or running summary untouched this long was lost (a worker died):
# asking again starts it afresh.
STALE_AFTER = dt.timedelta(minutes=15)
PART_MAX_TOKENS = 192
SUMMARY_TASK = "inference.tasks.summarize_document"


def summary_request(*, document: Document) -> DocumentSummary:
    """Queue a (new) summary of the document's current version."""
    with transaction.atomic():
        summary, created = DocumentSummary.objects.select_for_update().get_or_create(
            document=document
        )
        active = summary.status in (
            DocumentSummary.Status.QUEUED,
            DocumentSummary.Status.RUNNING,
        )
        stale = timezone.now() - summary.updated_at > STALE_AFTER
        if active and not created and not stale:
            return summary  # already on its way
        summary.status = DocumentSummary.Status.QUEUED
        summary.error = ""
        summary.progress = 0
        summary.save()
        enqueue_on_commit(SUMMARY_TASK, document.pk)
    return summary


def _parts(texts: list[str], budget: int) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for text in texts:
        cost = estimate_tokens(text)
        if current and used + cost > budget:
            parts.append("\n\n".join(current))
            current, used = [], 0
        current.append(text)
        used += cost
    if current:
        parts.append("\n\n".join(current))
    return parts


def _set(summary_id: int, **fields: object) -> None:
    DocumentSummary.objects.filter(pk=summary_id).update(**fields)


def document_summarize(*, document_id: int, llm: LLMClient | None = None) -> None:
    summary = (
        DocumentSummary.objects.select_related("document")
        .filter(document_id=document_id, status=DocumentSummary.Status.QUEUED)
        .first()
    )
    if summary is None:
        return
    document = summary.document
    llm = llm or LLMClient()

    def complete(messages: list[dict[str, str]], max_tokens: int) -> str:
        # One call at a time in the ask queue: askers are not held behind a
        # whole summary, only behind its current part.
        with model_turn():
            return llm.complete(messages, max_tokens=max_tokens)

    _set(summary.pk, status=DocumentSummary.Status.RUNNING, progress=1)
    texts = list(document.chunks.order_by("ordinal").values_list("text", flat=True))
    if not texts:
        _set(
            summary.pk,
            status=DocumentSummary.Status.FAILED,
            error="The document has no extracted text to summarize yet.",
        )
        return
    language = prompts.question_language(" ".join(texts[:3]))
    rule = prompts.language_rule(language)
    budget = max(256, (settings.LLM_MAX_CONTEXT - PART_MAX_TOKENS - 200) // 2)
    try:
        parts = _parts(texts, budget)
        partials = []
        for index, part in enumerate(parts, start=1):
            prompt = prompts.SUMMARY_PART.format(
                title=document.title, language_rule=rule, text=part
            )
            partials.append(
                complete(
                    [{"role": "user", "content": prompt}], max_tokens=PART_MAX_TOKENS
                )
            )
            _set(summary.pk, progress=min(90, int(90 * index / len(parts))))
        while len(partials) > 1:
            groups = _parts(partials, budget)
            partials = [
                complete(
                    [
                        {
                            "role": "user",
                            "content": prompts.SUMMARY_COMBINE.format(
                                title=document.title,
                                words=SUMMARY_WORDS,
                                language_rule=rule,
                                text=group,
                            ),
                        }
                    ],
                    max_tokens=PART_MAX_TOKENS * 2,
                )
                for group in groups
            ]
            if len(groups) == 1:
                break
    except LLMError as exc:
        _set(
            summary.pk, status=DocumentSummary.Status.FAILED, error=str(exc), progress=0
        )
        return
    _set(
        summary.pk,
        status=DocumentSummary.Status.READY,
        text=partials[0].strip(),
        model=llm.model,
        document_version=document.version,
        progress=100,
        error="",
    )

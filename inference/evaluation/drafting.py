"""A starter question set drafted by the LLM from a collection's own
passages, marked synthetic: a company with no question set yet gets one to
run and to edit.

Each drafted question keeps its passage's document as the expected
document, and is kept only when its answer is copied from the passage, so a
model that invents does not invent the gold answers too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence

from accounts.models import User
from inference.evaluation.metrics import contains_answer
from inference.evaluation.sets import SetQuestion
from inference.llm import LLMClient, LLMError
from kb.models import Action, Chunk, Collection

logger = logging.getLogger(__name__)

DRAFT_PROMPT = """Write one question that the passage below answers, and its \
answer: a few words copied exactly from the passage. Write the question in the \
passage's language. Reply with JSON only: {{"question": "...", "answer": "..."}}

Passage:
{text}"""
PASSAGE_MAX_CHARS = 1500
MIN_PASSAGE_CHARS = 200
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _parse(reply: str) -> tuple[str, str] | None:
    found = _JSON_OBJECT.search(reply)
    if not found:
        return None
    try:
        data = json.loads(found.group())
    except ValueError:
        return None
    question, answer = data.get("question"), data.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    question, answer = question.strip(), answer.strip()
    return (question, answer) if question and answer else None


def draft_questions(
    *,
    user: User,
    collection_ids: Sequence[int],
    count: int,
    llm: LLMClient | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[SetQuestion]:
    """Up to ``count`` questions from random passages ``user`` may read."""
    client = llm or LLMClient()
    readable = Collection.objects.for_user(user, Action.VIEW)
    if collection_ids:
        readable = readable.filter(pk__in=collection_ids)
    chunks = (
        Chunk.objects.filter(collection_id__in=readable.values("pk"))
        .select_related("document")
        .order_by("?")[: count * 3]
    )
    drafted: list[SetQuestion] = []
    tried = 0
    for chunk in chunks:
        if len(drafted) >= count:
            break
        if len(chunk.text) < MIN_PASSAGE_CHARS:
            continue
        tried += 1
        messages = [
            {
                "role": "user",
                "content": DRAFT_PROMPT.format(text=chunk.text[:PASSAGE_MAX_CHARS]),
            }
        ]
        try:
            parsed = _parse(client.complete(messages, max_tokens=160, temperature=0.0))
        except LLMError as exc:
            logger.warning("Drafting a question failed: %s", exc)
            parsed = None
        if parsed is not None and contains_answer(chunk.text, [parsed[1]]):
            drafted.append(
                SetQuestion(
                    question=parsed[0],
                    answers=(parsed[1],),
                    documents=(chunk.document.title,),
                    synthetic=True,
                )
            )
        if progress is not None:
            progress(len(drafted), count)
    return drafted

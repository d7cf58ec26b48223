"""Question sets: JSONL or CSV, one question a line or row.

Fields: ``question`` (required); ``answers`` (expected answers, optional: a
list, or in CSV one cell with answers separated by ``|``); ``documents``
(expected documents by title, file name or id, optional, same form);
``answerable`` (yes/no, true/false, 1/0; default yes); ``synthetic``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

MAX_QUESTIONS = 10_000
_TRUE = {"1", "true", "yes", "y", "是"}
_FALSE = {"0", "false", "no", "n", "否"}


class QuestionSetError(ValueError):
    """The set cannot be read; the message names the line and the problem."""


@dataclass(frozen=True)
class SetQuestion:
    question: str
    answers: tuple[str, ...] = ()
    documents: tuple[str, ...] = ()
    answerable: bool = True
    synthetic: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split("|") if part.strip())
    if isinstance(value, list) and all(
        isinstance(item, str | int | float) for item in value
    ):
        return tuple(str(item).strip() for item in value if str(item).strip())
    raise QuestionSetError(
        _("%(where)s: %(name)s must be a list of strings.")
        % {"where": where, "name": name}
    )


def _boolean(value: Any, where: str, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise QuestionSetError(
        _("%(where)s: %(name)s must be yes or no, not %(value)r.")
        % {"where": where, "name": name, "value": value}
    )


def question_from_row(row: dict[str, Any], where: str) -> SetQuestion:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise QuestionSetError(
            _("%(where)s: the question is missing.") % {"where": where}
        )
    if "\x00" in question:
        raise QuestionSetError(
            _("%(where)s: the question holds a NUL character.") % {"where": where}
        )
    metadata = row.get("metadata")
    answers = row.get("answers")
    if answers is None and isinstance(metadata, dict):
        answers = metadata.get("answers")
    return SetQuestion(
        question=question.strip(),
        answers=_strings(answers, where, "answers"),
        documents=_strings(row.get("documents"), where, "documents"),
        answerable=_boolean(row.get("answerable"), where, "answerable", True),
        synthetic=_boolean(row.get("synthetic"), where, "synthetic", False),
    )


def parse_question_set(data: bytes, filename: str) -> list[SetQuestion]:
    """The questions in ``data`` (JSONL, or CSV when the name ends in .csv)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuestionSetError(_("The question set is not UTF-8 text.")) from exc
    rows = _csv_rows(text) if filename.lower().endswith(".csv") else _jsonl_rows(text)
    questions = [question_from_row(row, where) for where, row in rows]
    if not questions:
        raise QuestionSetError(_("The question set holds no questions."))
    if len(questions) > MAX_QUESTIONS:
        raise QuestionSetError(
            _("A question set may hold at most %(n)d questions.") % {"n": MAX_QUESTIONS}
        )
    return questions


def _jsonl_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = _("line %(n)d") % {"n": number}
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise QuestionSetError(
                _("%(where)s is not JSON: %(error)s") % {"where": where, "error": exc}
            ) from exc
        if not isinstance(row, dict):
            raise QuestionSetError(
                _("%(where)s must be a JSON object.") % {"where": where}
            )
        rows.append((where, row))
    return rows


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "question" not in reader.fieldnames:
        raise QuestionSetError(_("The CSV file needs a header with a question column."))
    return [
        (_("row %(n)d") % {"n": number}, dict(row))
        for number, row in enumerate(reader, start=2)
    ]

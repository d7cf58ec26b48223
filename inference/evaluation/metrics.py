"""Scores for one answer, and a run's figures over all of them.

Answer correctness follows the reading-comprehension convention (SQuAD):
answers are compared after normalisation (Unicode NFKC, case folded,
punctuation and English articles removed); "contains" means a gold answer
appears in the answer, and token F1 counts shared words, where each CJK
character is a word of its own. Retrieval counts a document as found when
any of its passages is among the results.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Small numbers are written either way ("four" or "4"); both count.
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
HIT_AT = (1, 5, 10)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        " " if unicodedata.category(char).startswith(("P", "S")) else char
        for char in text
    )
    text = _ARTICLES.sub(" ", text)
    text = _NUMBER_WORD.sub(lambda match: _NUMBER_WORDS[match.group(1)], text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for word in normalise(text).split():
        if _CJK.search(word):
            tokens.extend(char for char in word if not char.isspace())
        else:
            tokens.append(word)
    return tokens


def contains_answer(answer: str, gold: Sequence[str]) -> bool:
    """A gold answer appears in ``answer`` (spaces ignored, so "1 000" and
    Chinese with or without spaces match)."""
    haystack = normalise(answer).replace(" ", "")
    return any(
        (needle := normalise(item).replace(" ", "")) and needle in haystack
        for item in gold
    )


def token_f1(answer: str, gold: Sequence[str]) -> float:
    predicted = _tokens(answer)
    best = 0.0
    for item in gold:
        expected = _tokens(item)
        common = sum((Counter(predicted) & Counter(expected)).values())
        if not common:
            continue
        precision = common / len(predicted)
        recall = common / len(expected)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def ndcg_at_10(ranked: Sequence[str], relevant: set[str]) -> float:
    gains = sum(
        1 / math.log2(rank + 2)
        for rank, key in enumerate(ranked[:10])
        if key in relevant
    )
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return gains / ideal if ideal else 0.0


def question_scores(
    *,
    status: str,
    answer: str,
    gold: Sequence[str],
    answerable: bool,
    cited_texts: Sequence[str],
    ranked_documents: Sequence[str],
    expected_documents: set[str],
    had_passages: bool = True,
) -> dict[str, Any]:
    scores: dict[str, Any] = {
        "declined": status == "not_found",
        # Declined before the model saw anything: retrieval found nothing
        # relevant enough. Otherwise the model (or the grounding check) did.
        "declined_by_retrieval": status == "not_found" and not had_passages,
        "answered": status == "complete",
        "failed": status in ("failed", "cancelled"),
    }
    if answerable and gold:
        correct = status == "complete" and contains_answer(answer, gold)
        scores["contains"] = correct
        scores["f1"] = round(token_f1(answer, gold), 4) if status == "complete" else 0.0
        if correct:
            scores["citation_supported"] = any(
                contains_answer(text, gold) for text in cited_texts
            )
    if expected_documents:
        for k in HIT_AT:
            scores[f"hit@{k}"] = bool(set(ranked_documents[:k]) & expected_documents)
        scores["ndcg@10"] = round(ndcg_at_10(ranked_documents, expected_documents), 4)
    return scores


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None when there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _rate(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A run's figures from its rows (each: scores, answerable, first_token_ms,
    total_ms, direct_first_token_ms). A figure with nothing to measure is None."""
    scored = [row["scores"] for row in rows if row["scores"]]
    answerable = [row["scores"] for row in rows if row["scores"] and row["answerable"]]
    unanswerable = [
        row["scores"] for row in rows if row["scores"] and not row["answerable"]
    ]
    correct = [s for s in answerable if s.get("contains")]
    first_tokens = [
        row["first_token_ms"]
        for row in rows
        if row["first_token_ms"] is not None and row["scores"].get("answered")
    ]
    totals = [row["total_ms"] for row in rows if row["total_ms"] is not None]
    paired = [
        (row["first_token_ms"], row["direct_first_token_ms"])
        for row in rows
        if row["first_token_ms"] is not None and row["direct_first_token_ms"]
    ]
    metrics: dict[str, Any] = {
        "questions": len(scored),
        "answer_contains": _rate(
            [s["contains"] for s in answerable if "contains" in s]
        ),
        "answer_f1": (
            round(statistics.mean(s["f1"] for s in answerable if "f1" in s), 4)
            if any("f1" in s for s in answerable)
            else None
        ),
        "citation_support": _rate(
            [s["citation_supported"] for s in correct if "citation_supported" in s]
        ),
        "answered_when_answerable": _rate([s["answered"] for s in answerable]),
        "answerable_declined_by_retrieval": _rate(
            [s.get("declined_by_retrieval", False) for s in answerable]
        ),
        "answerable_declined_by_model": _rate(
            [s["declined"] and not s.get("declined_by_retrieval") for s in answerable]
        ),
        "declined_when_unanswerable": _rate([s["declined"] for s in unanswerable]),
        "failed": _rate([s["failed"] for s in scored]),
        "first_token_p50_ms": percentile(first_tokens, 0.5),
        "first_token_p95_ms": percentile(first_tokens, 0.95),
        "total_p50_ms": percentile(totals, 0.5),
        "total_p95_ms": percentile(totals, 0.95),
    }
    for k in HIT_AT:
        metrics[f"hit@{k}"] = _rate([s[f"hit@{k}"] for s in scored if f"hit@{k}" in s])
    ndcg = [s["ndcg@10"] for s in scored if "ndcg@10" in s]
    metrics["ndcg@10"] = round(statistics.mean(ndcg), 4) if ndcg else None
    if paired:
        # Paired per question: both times vary far more between questions
        # than the platform's share does.
        direct = statistics.median(d for _, d in paired)
        added = statistics.median(p - d for p, d in paired)
        metrics["llm_first_token_p50_ms"] = round(direct, 1)
        metrics["platform_added_first_token_ms"] = round(added, 1)
        metrics["platform_overhead"] = round(added / direct, 4)
    return metrics


# Figures where higher is better, compared as absolute differences of rates.
QUALITY_METRICS = (
    "answer_contains",
    "answer_f1",
    "citation_support",
    "answered_when_answerable",
    "declined_when_unanswerable",
    "hit@1",
    "hit@5",
    "hit@10",
    "ndcg@10",
)
# Figures where lower is better, compared as ratios.
LATENCY_METRICS = (
    "first_token_p50_ms",
    "first_token_p95_ms",
    "total_p50_ms",
    "total_p95_ms",
)

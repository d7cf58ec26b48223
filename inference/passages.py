"""Which retrieved passages the model reads.

On a CPU the prompt is the cost of an answer: every token the model reads
delays its first word. Passages are therefore chosen by a token budget, best
first; a passage that repeats one already chosen, or that is a table of
contents rather than content, is skipped; the best passage is cut to the
budget rather than dropped, keeping the part where the question's words are
(the answer is usually near them, not necessarily at the passage's start).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import cast

from inference.events import PassageDict
from inference.llm import estimate_tokens
from kb.search.highlight import densest_window
from kb.text import looks_like_navigation

# Share of a passage's words already in a chosen passage above which it adds
# nothing worth its tokens.
NEAR_DUPLICATE_OVERLAP = 0.8
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_ENDS = (". ", "。", "\n", "！", "？", "; ")


@dataclass(frozen=True)
class Passage:
    """A retrieved passage as the answer path carries it, numbered as the
    model sees it."""

    number: int
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    page: int | None
    section: str
    text: str
    url: str

    def as_event(self) -> PassageDict:
        """The passage as answer events carry it (PassageDict mirrors these
        fields for the type checker)."""
        return cast(PassageDict, asdict(self))


def _shingles(text: str) -> set[str]:
    """Words, and each CJK character pair (Chinese has no spaces)."""
    words = {word.casefold() for word in _WORD.findall(text)}
    cjk = "".join(_CJK.findall(text))
    return words | {cjk[i : i + 2] for i in range(len(cjk) - 1)}


def _repeats(text: str, chosen: Sequence[set[str]]) -> bool:
    words = _shingles(text)
    if not words:
        return True
    return any(
        len(words & earlier) / len(words) >= NEAR_DUPLICATE_OVERLAP
        for earlier in chosen
    )


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The start of ``text`` within about ``tokens`` tokens, cut at a
    sentence or word boundary where one is near."""
    if estimate_tokens(text) <= tokens:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(text[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    boundary = max(cut.rfind(mark) for mark in _SENTENCE_ENDS)
    if boundary > low * 0.6:
        return cut[: boundary + 1]
    space = cut.rfind(" ")
    return cut[:space] if space > low * 0.8 else cut


def cut_to_tokens(text: str, tokens: int, terms: Sequence[str] = ()) -> str:
    """The part of ``text`` within about ``tokens`` tokens where most of the
    question's ``terms`` (lower case) are, begun at a sentence where one
    begins shortly before the first of them; the start of ``text`` when none
    is found."""
    estimated = estimate_tokens(text)
    if estimated <= tokens:
        return text
    width = len(text) * tokens // estimated
    start = densest_window(text, terms, width)
    if start:
        # The window begins a quarter of its width before a question word: a
        # sentence that begins in that quarter is begun whole.
        lead = text[start : start + width // 4]
        ends = [lead.rfind(mark) + len(mark) for mark in _SENTENCE_ENDS if mark in lead]
        text = text[start + max(ends, default=0) :].lstrip()
    return truncate_to_tokens(text, tokens)


def choose_passages(
    passages: Sequence[Passage], budget_tokens: int, terms: Sequence[str] = ()
) -> list[Passage]:
    """The passages to prompt with, best first, within ``budget_tokens``,
    renumbered from 1. The best one, when longer than the budget, is cut to
    the part holding the question's ``terms``."""
    chosen: list[Passage] = []
    chosen_words: list[set[str]] = []
    spent = 0
    for passage in passages:
        if looks_like_navigation(passage.text) or _repeats(passage.text, chosen_words):
            continue
        cost = estimate_tokens(passage.text) + 24  # the fence around it
        if spent + cost > budget_tokens:
            if chosen:
                continue  # a shorter one further down may still fit
            passage = replace(
                passage, text=cut_to_tokens(passage.text, budget_tokens - 24, terms)
            )
            cost = budget_tokens
        chosen.append(replace(passage, number=len(chosen) + 1))
        chosen_words.append(_shingles(passage.text))
        spent += cost
    return chosen

"""Citations: which passages an answer cites, and whether they hold what it says.

A model's ``[n]`` is a claim, not a proof. Each citation is checked against
the sentence it ends: the passage must hold most of that sentence's words
(CJK character pairs count as words). A citation that points at no passage
the asker may read is dropped; one whose passage does not hold its sentence
is kept but marked ``supported: false`` so readers see it was not verified.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from inference.passages import Passage
from kb.text import FUNCTION_WORDS, cjk_ratio

CITATION = re.compile(r"\[(\d{1,2})\]")
_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# A sentence ends at one of these; its citations are the markers in it.
_LEADING_MARKERS = re.compile(r"\s*(?:\[\d{1,2}\]\s*)+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？;；])\s+|(?<=[。！？；])|\n+")
# Share of a sentence's words its cited passages must hold.
SUPPORT_MIN_OVERLAP = 0.5
# Share of an unmarked answer's words a passage must hold to be credited
# (small models sometimes forget the markers).
ATTRIBUTION_MIN_OVERLAP = 0.5


def content_words(text: str) -> set[str]:
    """Latin words of two letters or more, digits, and CJK character pairs."""
    latin = {w.casefold() for w in _WORD.findall(_CJK.sub(" ", text))}
    pairs = set()
    for run in _CJK.findall(text):
        if len(run) == 1:
            pairs.add(run)
        pairs.update(run[i : i + 2] for i in range(len(run) - 1))
    return latin | pairs


def _overlap(claim: set[str], passage_text: str) -> float:
    if not claim:
        return 1.0
    return len(claim & content_words(passage_text)) / len(claim)


def cited_sentences(answer: str) -> list[tuple[str, list[int]]]:
    """Each sentence of ``answer`` with the source numbers it cites (a marker
    standing alone after a sentence belongs to that sentence)."""
    result: list[tuple[str, list[int]]] = []
    for piece in _SENTENCE_END.split(answer):
        leading = _LEADING_MARKERS.match(piece)
        if leading and result:
            # Markers that open a piece close the sentence before it.
            result[-1][1].extend(int(n) for n in CITATION.findall(leading.group()))
            piece = piece[leading.end() :]
        numbers = [int(n) for n in CITATION.findall(piece)]
        claim = CITATION.sub("", piece).strip()
        if claim:
            result.append((claim, numbers))
        elif numbers and result:
            result[-1][1].extend(numbers)
    return result


def attributed_numbers(answer: str, passages: Sequence[Passage]) -> list[int]:
    """The passages an answer without markers was drawn from."""
    words = content_words(answer)
    if not words:
        return []
    return [
        passage.number
        for passage in passages
        if _overlap(words, passage.text) >= ATTRIBUTION_MIN_OVERLAP
    ]


def citations_for(
    answer: str, passages: Sequence[Passage], readable: set[int]
) -> list[dict[str, Any]]:
    """The answer's citations, in order of first mention, each with whether
    its passage supports the sentences that cite it."""
    by_number = {p.number: p for p in passages}
    claims: dict[int, list[str]] = {}
    for sentence, numbers in cited_sentences(answer):
        for number in numbers:
            claims.setdefault(number, []).append(sentence)
    marked = bool(claims)
    if not marked:
        claims = {n: [answer] for n in attributed_numbers(answer, passages)}
    cited: list[dict[str, Any]] = []
    for number, sentences in claims.items():
        passage = by_number.get(number)
        if passage is None or passage.chunk_id not in readable:
            continue
        supported = all(
            _overlap(content_words(sentence), passage.text) >= SUPPORT_MIN_OVERLAP
            # A sentence citing several sources is supported by them together.
            or _overlap(
                content_words(sentence),
                " ".join(
                    by_number[n].text
                    for n, said in claims.items()
                    if sentence in said and n in by_number
                ),
            )
            >= SUPPORT_MIN_OVERLAP
            for sentence in sentences
        )
        cited.append(
            {
                "n": passage.number,
                "chunk_id": passage.chunk_id,
                "document_id": passage.document_id,
                "collection_id": passage.collection_id,
                "title": passage.title,
                "page": passage.page,
                "url": passage.url,
                "supported": supported,
            }
        )
    return cited


def dangling_numbers(answer: str, passages: Sequence[Passage]) -> list[int]:
    """Markers in the answer that point at no passage the model was given."""
    given = {p.number for p in passages}
    return sorted({int(n) for n in CITATION.findall(answer)} - given)


# Below this share of its words found in any passage, an answer in the
# passages' own script was not drawn from them.
GROUNDED_MIN_OVERLAP = 0.3
# Above this share of CJK characters a text counts as Chinese, as a question does.
CJK_SHARE = 0.3
# A statement this long (in words that carry a fact), half of them in one
# passage, was read from that passage even when the rest of the answer is
# the model's own padding.
DRAWN_STATEMENT_MIN_WORDS = 4


def is_ungrounded(
    answer: str,
    question: str,
    passages: Sequence[Passage],
    citations: Sequence[dict[str, Any]],
) -> bool:
    """Whether an answer reads as written from the model's own knowledge: no
    citation it makes is supported, beyond the question's own words little
    of it is in any passage, and no sentence of it states what a passage
    says. Only judged when the answer and the passages are written in the
    same script (a Chinese answer drawn from English passages shares no
    words with them)."""
    if any(c.get("supported") for c in citations):
        return False
    passages_text = " ".join(p.text for p in passages)
    if (cjk_ratio(answer) > CJK_SHARE) != (cjk_ratio(passages_text) > CJK_SHARE):
        return False
    asked = content_words(question)
    claim = content_words(CITATION.sub("", answer)) - asked
    if len(claim) < 3:
        return False
    if _overlap(claim, passages_text) >= GROUNDED_MIN_OVERLAP:
        return False
    passage_words = [content_words(p.text) for p in passages]
    return not any(
        _states_a_passage(
            content_words(sentence) - asked - FUNCTION_WORDS, passage_words
        )
        for sentence, _ in cited_sentences(answer)
    )


def _states_a_passage(facts: set[str], passage_words: list[set[str]]) -> bool:
    """Whether a sentence's fact-bearing words are, for the most part, one
    passage's: small models wrap a fact they read in advice of their own."""
    return len(facts) >= DRAWN_STATEMENT_MIN_WORDS and any(
        len(facts & words) >= SUPPORT_MIN_OVERLAP * len(facts)
        for words in passage_words
    )

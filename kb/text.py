"""Text preparation shared by indexing and querying.

PostgreSQL's parsers do not split Chinese into words, so runs of CJK
characters are segmented with jieba and joined with spaces before they reach
``to_tsvector``/``websearch_to_tsquery``; Latin text passes through and is
stemmed by the ``english`` configuration (which leaves CJK words intact).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

TEXT_SEARCH_CONFIG = "english"
_CJK_RUN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+"
)

# English words that carry no fact of their own: a question's or an answer's
# other words say what it is about.
FUNCTION_WORDS = frozenset({
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "do", "does", "did",
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "of", "in",
    "on", "at", "to", "for", "from", "by", "with", "about", "and", "or", "i", "we",
    "you", "my", "our", "your", "me", "us", "it", "its", "this", "that", "these",
    "those", "there", "can", "could", "should", "would", "will", "shall", "may",
    "might", "must", "please", "tell", "explain", "describe", "give", "list", "show",
    "find", "any", "some", "all", "much", "many", "way", "ways", "know", "get",
})  # fmt: skip


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None


def cjk_ratio(text: str) -> float:
    letters = [ch for ch in text if not ch.isspace()]
    if not letters:
        return 0.0
    cjk = sum(len(match.group()) for match in _CJK_RUN.finditer(text))
    return cjk / len(letters)


_OTHER_SCRIPT_WORD = re.compile(r"[^\W\d_]+")


def cjk_word_share(text: str) -> float:
    """The share of ``text``'s words that are CJK words (jieba's), against
    words in other scripts; numbers count for neither. Unlike the share of
    characters, a Chinese sentence naming a long Latin-script name stays
    Chinese, and an English one naming a Chinese place stays English."""
    cjk_words = 0
    for match in _CJK_RUN.finditer(text):
        cjk_words += sum(1 for word in _jieba().cut(match.group()) if word.strip())
    other_words = len(_OTHER_SCRIPT_WORD.findall(_CJK_RUN.sub(" ", text)))
    total = cjk_words + other_words
    return cjk_words / total if total else 0.0


def segment(text: str) -> str:
    """``text`` with every CJK run split into space-separated words."""
    if not has_cjk(text):
        return text
    jieba = _jieba()

    def split(match: re.Match[str]) -> str:
        words = [word for word in jieba.cut_for_search(match.group()) if word.strip()]
        return f" {' '.join(words)} "

    return _CJK_RUN.sub(split, text)


# The longest word looked up in the index when a query's unknown name is cut
# again (``query_word_candidates``): names are rarely longer.
LONGEST_INDEXED_PIECE = 8
# Words looked up for one query at most: a question has a few such spans,
# and a pasted paragraph must not turn into thousands of lookups.
MAX_INDEXED_CANDIDATES = 256


def _in_dictionary(word: str) -> bool:
    return bool(_jieba().get_FREQ(word))


def _search_words(word: str) -> list[str]:
    """``word`` and its dictionary words of two and three characters, as
    jieba's ``cut_for_search`` gives them (what the index holds)."""
    grams = [
        word[start : start + size]
        for size in (2, 3)
        if len(word) > size
        for start in range(len(word) - size + 1)
        if _in_dictionary(word[start : start + size])
    ]
    return [*grams, word]


def _uncertain_spans(
    words: list[str], indexed: frozenset[str] | None
) -> list[tuple[int, int]]:
    """Ranges of ``words`` jieba may have cut wrongly: runs of single
    characters and words not in its dictionary (nor in ``indexed``, once
    known), two characters or more together. Its HMM joins a name it does
    not know to the character after it ("尚恩有" for 尚恩 + 有)."""
    spans: list[tuple[int, int]] = []
    start = None
    for index, word in enumerate([*words, ""]):
        unknown = not _in_dictionary(word) and (indexed is None or word not in indexed)
        uncertain = len(word) == 1 or (len(word) > 1 and unknown)
        if uncertain and start is None:
            start = index
        elif not uncertain and start is not None:
            if sum(len(w) for w in words[start:index]) > 1:
                spans.append((start, index))
            start = None
    return spans


def query_word_candidates(text: str) -> list[str]:
    """The words ``text`` may hold that jieba cut wrongly, to look up in
    the index (``segment_query``): the pieces of its uncertain spans that are
    not dictionary words."""
    found: dict[str, None] = {}
    for match in _CJK_RUN.finditer(text):
        words = list(_jieba().cut(match.group()))
        for start, end in _uncertain_spans(words, None):
            span = "".join(words[start:end])
            for size in range(2, min(len(span), LONGEST_INDEXED_PIECE) + 1):
                for begin in range(len(span) - size + 1):
                    piece = span[begin : begin + size]
                    if not _in_dictionary(piece):
                        found[piece] = None
    return list(found)[:MAX_INDEXED_CANDIDATES]


def _cut_by_index(span: str, indexed: frozenset[str]) -> list[str] | None:
    """``span`` in the fewest pieces that are each a word ``indexed`` holds
    (not a dictionary word: jieba would have cut those itself) or one
    character; None when no such word is in it."""
    best: list[list[str]] = [[]]
    for end in range(1, len(span) + 1):
        best.append([*best[end - 1], span[end - 1]])
        for start in range(max(0, end - LONGEST_INDEXED_PIECE), end - 1):
            piece = span[start:end]
            shorter = len(best[start]) + 1 < len(best[end])
            if shorter and piece in indexed and not _in_dictionary(piece):
                best[end] = [*best[start], piece]
    pieces = best[-1]
    return pieces if any(len(piece) > 1 for piece in pieces) else None


def segment_query(text: str, indexed: frozenset[str]) -> str:
    """``segment(text)`` for a search, except where jieba joined a name it
    does not know to a character beside it and the searched collections
    hold the name (``indexed``: which of ``query_word_candidates`` they
    hold): there the name and the character are words of their own."""
    if not indexed:
        return segment(text)

    def split(match: re.Match[str]) -> str:
        words = list(_jieba().cut(match.group()))
        # From the last span back, so the earlier spans' places hold.
        for start, end in reversed(_uncertain_spans(words, indexed)):
            pieces = _cut_by_index("".join(words[start:end]), indexed)
            if pieces is not None:
                words[start:end] = pieces
        cut = [piece for word in words for piece in _search_words(word)]
        return f" {' '.join(word for word in cut if word.strip())} "

    return _CJK_RUN.sub(split, text)


# A table-of-contents or index entry: dotted (or spaced) leaders, then a page
# number, as PDF text extraction leaves them.
_LEADER_ENTRY = re.compile(r"(?:[.·…‧•_]\s?){3,}\s*\d{1,4}\b")
_ENDS_IN_PAGE_NUMBER = re.compile(r"\S\s+\d{1,4}\s*$")
# One leader entry every this many characters or closer: a list of entries,
# not prose that happens to hold an ellipsis.
NAVIGATION_CHARS_PER_ENTRY = 160
NAVIGATION_LINE_SHARE = 0.6


def looks_like_navigation(text: str) -> bool:
    """Whether ``text`` is a table of contents or an index rather than
    content: entries with dotted leaders and page numbers, or short lines
    that mostly end in a page number. Such text repeats every heading's
    words, so it matches searches without answering them."""
    stripped = text.strip()
    if not stripped:
        return False
    entries = len(_LEADER_ENTRY.findall(stripped))
    if entries >= 3 and entries * NAVIGATION_CHARS_PER_ENTRY >= len(stripped):
        return True
    lines = [line for line in stripped.splitlines() if line.strip()]
    if len(lines) < 5:
        return False
    numbered = sum(1 for line in lines if _ENDS_IN_PAGE_NUMBER.search(line))
    short = sum(len(line) for line in lines) / len(lines) < 80
    return short and numbered / len(lines) >= NAVIGATION_LINE_SHARE

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

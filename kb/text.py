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


def segment(text: str) -> str:
    """``text`` with every CJK run split into space-separated words."""
    if not has_cjk(text):
        return text
    jieba = _jieba()

    def split(match: re.Match[str]) -> str:
        words = [word for word in jieba.cut_for_search(match.group()) if word.strip()]
        return f" {' '.join(words)} "

    return _CJK_RUN.sub(split, text)

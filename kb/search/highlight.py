"""Marking the query's words in a passage."""

from __future__ import annotations

import html
from functools import lru_cache


def highlight(text: str, terms: tuple[str, ...]) -> str:
    """HTML-escaped ``text`` with the query's words in <mark>, matched
    case-insensitively anywhere (Chinese has no spaces to stop at). At each
    place the longest word wins, left to right, as an alternation of the
    words longest first would match. Found with ``str.find``: 0.25 ms for a
    page of ten SciFact passages where such a pattern took 0.8, with the same
    marks on all 300 queries' pages. Words are found in the text before it is
    escaped, so none lands inside an entity (``&lt;`` for a query with "lt")."""
    words = _highlight_words(terms)
    folded = text.lower()
    if not words or len(folded) != len(text):
        # A character whose lower case is longer (İ) would shift positions;
        # such a passage goes unmarked rather than marked in the wrong place.
        return html.escape(text)
    found: list[tuple[int, int]] = []
    for word in words:
        at = folded.find(word)
        while at != -1:
            found.append((at, -len(word)))
            at = folded.find(word, at + 1)
    found.sort()
    parts: list[str] = []
    done = 0
    for start, minus_length in found:
        if start < done:
            continue
        end = start - minus_length
        parts += [
            html.escape(text[done:start]),
            "<mark>",
            html.escape(text[start:end]),
            "</mark>",
        ]
        done = end
    parts.append(html.escape(text[done:]))
    return "".join(parts)


@lru_cache(maxsize=256)
def _highlight_words(terms: tuple[str, ...]) -> tuple[str, ...]:
    """The words worth marking: two characters or more, in lower case."""
    return tuple({term.lower() for term in terms if len(term) > 1})

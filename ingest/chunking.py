"""Structure-aware chunking of parsed elements.

A chunk never spans two sections or two pages (so a citation names one page
and one section); titles open a new chunk and are repeated at its head so the
passage reads on its own; tables stay whole while they fit in
``TABLE_MAX_FACTOR`` chunk lengths; an element longer than a chunk is split
at sentence, then word, boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

TABLE_MAX_FACTOR = 3
_SENTENCE_END = re.compile(r"(?<=[.!?。！？;；])\s+|(?<=[。！？；])")


@dataclass
class ChunkDraft:
    text: str
    page: int | None
    section_title: str
    element_types: list[str] = field(default_factory=list)


def _split_long(text: str, limit: int) -> Iterator[str]:
    """Pieces of at most ``limit`` characters, cut at sentence ends when possible."""
    piece = ""
    for sentence in _SENTENCE_END.split(text):
        if not sentence:
            continue
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if piece:
                yield piece
                piece = ""
            yield sentence[:cut].strip()
            sentence = sentence[cut:].strip()
        if piece and len(piece) + 1 + len(sentence) > limit:
            yield piece
            piece = ""
        piece = f"{piece} {sentence}".strip() if piece else sentence
    if piece:
        yield piece


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts and people can read: no NULs or control bytes."""
    return _CONTROL.sub("", text).strip()


def chunk_elements(
    elements: Iterable[dict[str, Any]], *, max_chars: int
) -> list[ChunkDraft]:
    chunks: list[ChunkDraft] = []
    section = ""
    parts: list[str] = []
    types: list[str] = []
    page: int | None = None

    def flush() -> None:
        nonlocal parts, types
        body = "\n".join(parts).strip()
        if body and not (len(parts) == 1 and types == ["Title"] and body == section):
            chunks.append(ChunkDraft(body, page, section[:500], sorted(set(types))))
        elif body and types == ["Title"]:
            # A title alone (its section had no text) is still findable.
            chunks.append(ChunkDraft(body, page, section[:500], ["Title"]))
        parts, types = [], []

    for element in elements:
        text = clean_text(element["text"])
        kind = element.get("type") or "NarrativeText"
        element_page = element.get("page")
        if not text:
            continue
        if element_page != page and parts:
            flush()
        page = element_page
        if kind == "Title":
            flush()
            section = text
            parts, types = [text], ["Title"]
            continue
        if kind == "Table" and len(text) <= max_chars * TABLE_MAX_FACTOR:
            if parts and len("\n".join(parts)) + len(text) > max_chars:
                flush()
            parts.append(text)
            types.append(kind)
            if len("\n".join(parts)) >= max_chars:
                flush()
            continue
        pieces = (
            [text] if len(text) <= max_chars else list(_split_long(text, max_chars))
        )
        for piece in pieces:
            current = len("\n".join(parts))
            if parts and current + 1 + len(piece) > max_chars:
                flush()
                if section and piece != section:
                    parts, types = [section], ["Title"]
                    if len(section) + 1 + len(piece) > max_chars:
                        parts, types = [], []
            parts.append(piece)
            types.append(kind)
    flush()
    return chunks

"""What a search returns: hits, filters and the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext

from kb.embedding import model_reads
from kb.search.highlight import highlight


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    document_title: str
    collection_id: int
    collection_name: str
    page: int | None
    section_title: str
    text: str
    score: float
    dense_rank: int | None
    lexical_rank: int | None
    # Cosine similarity to the query (dense candidates only).
    similarity: float | None = None
    # Share of the query's word weight (IDF) found in the passage (lexical candidates only).
    lexical_coverage: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The hit as the search API and MCP give it (the API adds
        ``snippet_html``)."""
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "document_title": self.document_title,
            "collection_id": self.collection_id,
            "collection_name": self.collection_name,
            "page": self.page,
            "section_title": self.section_title,
            "text": self.text,
            "score": self.score,
            "url": self.url,
        }

    @property
    def url(self) -> str:
        return chunk_url(self.document_id, self.chunk_id)

    @property
    def snippet_html(self) -> str:
        return highlight(self.text, self._terms)

    @property
    def terms(self) -> tuple[str, ...]:
        """The query's words as the index splits them, lower case."""
        return self._terms

    _terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchFilters:
    collection_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()
    content_types: tuple[str, ...] = ()
    uploaded_after: Any = None
    uploaded_before: Any = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    dense_used: bool
    path: str
    timings_ms: dict[str, float]
    # The model that embedded the query; the dense half only compared it
    # with chunks that model embedded.
    embedding_model: str | None = None
    # False when the index's embedding model does not read the query's
    # language: the results then come from word matches alone.
    language_covered: bool = True

    @property
    def notice(self) -> str:
        """What the user should know about how these results were found."""
        if self.language_covered:
            return ""
        return gettext(
            "The search model of this installation does not read this "
            "language, so these results match your words only; documents in "
            "other languages cannot be found. An administrator can switch to "
            "the multilingual model (EMBEDDING_MODEL=google/embeddinggemma-300m)."
        )


def chunk_url(document_id: int, chunk_id: int, page: int | None = None) -> str:
    """The document's page in the portal, scrolled to this passage (highlighted)."""
    url = reverse("ingest:document-detail", args=[document_id])
    page_part = f"&page={page}" if page else ""
    return f"{url}?chunk={chunk_id}{page_part}#chunk-{chunk_id}"


def dense_weight(query: str, model: str) -> float:
    """How much the vector list counts: zero when ``model`` does not read the
    query's language."""
    return 1.0 if model_reads(model, query) else 0.0

"""Which embedding model the search index holds, and its embedder.

Ingestion and search ask here, not the settings: after ``manage.py reembed``
the index may hold another model than ``EMBEDDING_MODEL`` names, and a query
must be embedded by the model that made the vectors it is compared with.
"""

from __future__ import annotations

from kb.embedding import (
    Embedder,
    embedder_for,
    embedding_model_label,
)
from kb.models import EMBEDDING_DIMENSIONS, EmbeddingIndex

INDEX_ROW = 1


def active_index() -> EmbeddingIndex:
    index, _created = EmbeddingIndex.objects.get_or_create(
        pk=INDEX_ROW,
        defaults={
            "model_name": embedding_model_label(),
            "dimensions": EMBEDDING_DIMENSIONS,
        },
    )
    return index


def indexed_model_name() -> str | None:
    """The model the index holds, None before its row exists (a read only:
    nothing is created)."""
    return (
        EmbeddingIndex.objects.filter(pk=INDEX_ROW)
        .values_list("model_name", flat=True)
        .first()
    )


def active_model_name() -> str:
    return active_index().model_name


def index_embedder(index: EmbeddingIndex | None = None) -> Embedder:
    """The embedder of the model the index holds (``index``, when the caller
    has just read it), checked against the index's dimensions."""
    index = index or active_index()
    return embedder_for(index.model_name, dimensions=index.dimensions)

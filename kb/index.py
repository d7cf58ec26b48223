"""Which embedding model the search index holds, and its embedder.

Ingestion and search ask here, not the settings: after ``manage.py reembed``
the index may hold another model than ``EMBEDDING_MODEL`` names, and a query
must be embedded by the model that made the vectors it is compared with.
"""

from __future__ import annotations

from kb.embedding import (
    Embedder,
    EmbeddingError,
    embedder_for_model,
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


def active_model_name() -> str:
    return active_index().model_name


def index_embedder(index: EmbeddingIndex | None = None) -> Embedder:
    """The embedder of the model the index holds (``index``, when the caller
    has just read it), checked against the index's dimensions."""
    index = index or active_index()
    return checked_embedder(index.model_name, index.dimensions)


def checked_embedder(model_name: str, dimensions: int | None) -> Embedder:
    """The embedder of ``model_name``, which must make vectors of the
    index's ``dimensions`` (unchecked when the index row does not exist yet)."""
    embedder = embedder_for_model(model_name)
    if dimensions is not None and embedder.dimensions != dimensions:
        raise EmbeddingError(
            f"{model_name} makes {embedder.dimensions}-dimensional vectors but "
            f"the index holds {dimensions}: run `manage.py reembed --model "
            f"{model_name}` to rebuild the vectors."
        )
    return embedder

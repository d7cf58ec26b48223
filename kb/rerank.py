"""Optional cross-encoder reranking of the fused candidates, when
``RERANKER_MODEL`` names a sentence-transformers cross-encoder (a name
available offline or a local path). It only reorders what the permission-
filtered SQL returned; it never adds a passage."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from django.conf import settings

from kb.embedding import EmbeddingError

# Candidates scored by the cross-encoder per query.
RERANK_CANDIDATES = 30
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _load(model_name: str) -> Any:
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(model_name, device="cpu")
    except Exception as exc:
        raise EmbeddingError(
            f"Could not load the reranker {model_name!r}: {exc}. Set RERANKER_MODEL to a "
            "cross-encoder available offline, or leave it empty."
        ) from exc


def reranker_enabled() -> bool:
    return bool(settings.RERANKER_MODEL)


def rerank_scores(query: str, texts: list[str]) -> list[float]:
    """Relevance of each text to the query; higher is better."""
    if not texts:
        return []
    with _lock:
        model = _load(settings.RERANKER_MODEL)
        scores = model.predict(
            [(query, text) for text in texts], batch_size=16, show_progress_bar=False
        )
    return [float(score) for score in scores]

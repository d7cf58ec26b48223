"""``search_chunks``: one search, from the query to the ranked hits."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from accounts.models import ApiToken, Person
from kb.embedding import embedder_for, embedding_model_label
from kb.rerank import RERANK_CANDIDATES, rerank_scores, reranker_enabled
from kb.search import tuning
from kb.search.execute import SearchStatement
from kb.search.results import SearchFilters, SearchHit, SearchResult, dense_weight
from kb.search.vocabulary import indexed_words
from kb.text import query_word_candidates, segment_query

_WORD = re.compile(r"\w+", re.UNICODE)
# The model this process last found in the index: the one to embed queries
# with (the search statement checks it against the index row).
_index_model_seen: str | None = None
# Embeds a hybrid query while its lexical half runs (the model releases the
# GIL while it computes). One thread: only a search that is this process's
# only one at the time does so (see ``_SearchesRunning``).
_QUERY_EMBEDDING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="query-embed")


class _SearchesRunning:
    """How many searches this process is running now. A search alone in
    its process embeds its query while the lexical half runs, on cores that
    would otherwise wait; when others run too, the cores are busy anyway and
    the second statement that overlapping costs only adds to their queue
    (measured with 16 clients on 2 cores: API p95 1.47-1.75 x the SQL when
    every search overlapped, 1.22-1.32 when none did)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def one(self) -> Iterator[bool]:
        """Counts a search while it runs; yields whether it runs alone."""
        with self._lock:
            self._count += 1
            alone = self._count == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1


_searches_running = _SearchesRunning()


def _embed_query(query: str, model_name: str) -> tuple[np.ndarray, float]:
    """The query's vector by ``model_name``, and how long it took (ms)."""
    started = time.perf_counter()
    vector = embedder_for(model_name).encode_query(query)
    return vector, (time.perf_counter() - started) * 1000


def search_chunks(
    *,
    user: Person,
    query: str,
    limit: int = 10,
    token: ApiToken | None = None,
    filters: SearchFilters | None = None,
    mode: str = "hybrid",
    query_vector: Any = None,
    query_model: str | None = None,
) -> SearchResult:
    """The best ``limit`` chunks for ``query`` among what ``user`` may read.
    ``mode`` is ``hybrid``, ``dense`` or ``lexical`` (the last two for
    evaluation). ``query_vector`` may be given with the ``query_model`` that
    made it (else the index's model is assumed)."""
    with _searches_running.one() as alone:
        return _search_chunks(
            user=user,
            query=query,
            limit=limit,
            token=token,
            filters=filters,
            mode=mode,
            query_vector=query_vector,
            query_model=query_model,
            may_overlap=alone,
        )


def _search_chunks(
    *,
    user: Person,
    query: str,
    limit: int,
    token: ApiToken | None,
    filters: SearchFilters | None,
    mode: str,
    query_vector: Any,
    query_model: str | None,
    may_overlap: bool,
) -> SearchResult:
    """``search_chunks``; ``may_overlap``: whether a query still to embed
    may be embedded while the lexical half runs."""
    from kb.index import embedder_for

    global _index_model_seen
    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    query = query.strip()[:2000]
    if not query:
        return SearchResult([], False, "empty", timings)
    # Words split as the index splits them: for the full-text query and the
    # words to highlight.
    possible_words = query_word_candidates(query)
    if possible_words:
        started = time.perf_counter()
        indexed = indexed_words(
            user=user, token=token, filters=filters, candidates=possible_words
        )
        timings["words_ms"] = (time.perf_counter() - started) * 1000
    else:
        indexed = frozenset()
    segmented = segment_query(query, indexed)
    # The index's model as this process last saw it; the statement checks it.
    vector_is_assumed = query_vector is not None and query_model is None
    model = query_model or _index_model_seen or embedding_model_label()
    weight = (
        dense_weight(query, model)
        if mode == "hybrid"
        else (1.0 if mode == "dense" else 0.0)
    )
    dense_on = weight > 0
    rerank = mode == "hybrid" and reranker_enabled()
    wanted = limit
    if rerank:
        limit = max(limit, RERANK_CANDIDATES)
    # Fusion needs a deep list from each half; a dense-only query just its page.
    candidates = max(tuning.CANDIDATES, limit) if mode == "hybrid" else limit
    # A hybrid query still to embed, when the process has cores to spare:
    # its lexical half runs while the model embeds it, and a second
    # statement adds the dense half (the one statement cannot start before
    # the vector is made: with one client, API p95 1.44-1.50 x the SQL that
    # way, 1.15-1.25 overlapped).
    overlap = may_overlap and mode == "hybrid" and dense_on and query_vector is None
    pending = _QUERY_EMBEDDING.submit(_embed_query, query, model) if overlap else None
    if dense_on and query_vector is None and pending is None:
        query_vector, timings["embed_ms"] = _embed_query(query, model)
    # Whether the first statement ranks the dense half.
    dense_first = dense_on and pending is None
    statement = SearchStatement.build(
        user=user,
        token=token,
        filters=filters,
        dense_on=dense_first,
        candidates=candidates,
        part="whole" if pending is None else "lexical_list",
    )
    params: dict[str, Any] = {
        **statement.params,
        "dense_on": dense_first,
        "lexical_on": mode != "dense",
        **tuning.tuning_values(),
        "text": segmented,
        "dense_weight": weight,
        "limit": limit,
    }
    started = time.perf_counter()
    scope, rows = statement.run(params, model, query_vector)
    if pending is not None:
        waited = time.perf_counter()
        query_vector, timings["embed_ms"] = pending.result()
        # The SQL's time, not the wait for the vector.
        started += time.perf_counter() - waited
        statement = statement.given_lexical()
        params = {
            **params,
            "dense_on": True,
            "lexical_on": False,
            "lexical_ids": [row[0] for row in rows],
            "lexical_ranks": [row[1] for row in rows],
            "lexical_coverage": [row[2] for row in rows],
        }
        scope, rows = statement.run(params, model, query_vector)
    if dense_on and scope.dense_path == "none" and scope.index_model is not None:
        # The index changed models (manage.py reembed) since this process
        # last looked, or the caller's vector predates it: once more with
        # the index's model (which must make vectors of the index's size).
        embedder = embedder_for(scope.index_model, dimensions=scope.index_dimensions)
        model = scope.index_model
        if not vector_is_assumed:
            query_vector = embedder.encode_query(query)
        scope, rows = statement.run(params, model, query_vector)
    timings["sql_ms"] = (time.perf_counter() - started) * 1000
    if scope.index_model is not None or dense_on:
        _index_model_seen = scope.index_model or model
    words = tuple(dict.fromkeys(_WORD.findall(segmented.lower())))
    hits = [
        SearchHit(
            chunk_id=row[0],
            document_id=row[1],
            document_title=row[2],
            collection_id=row[3],
            collection_name=row[4],
            page=row[5],
            section_title=row[6],
            text=row[7],
            score=float(row[8]),
            dense_rank=row[9],
            lexical_rank=row[10],
            similarity=None if row[11] is None else float(row[11]),
            lexical_coverage=None if row[12] is None else float(row[12]),
            _terms=words,
        )
        for row in rows
    ]
    if rerank and hits:
        started = time.perf_counter()
        scores = rerank_scores(query, [hit.text for hit in hits])
        order = sorted(range(len(hits)), key=lambda index: -scores[index])
        hits = [replace(hits[index], score=scores[index]) for index in order]
        timings["rerank_ms"] = (time.perf_counter() - started) * 1000
    return SearchResult(
        hits[:wanted],
        dense_on,
        scope.dense_path if dense_on else "lexical",
        timings,
        model if dense_on else None,
        language_covered=mode != "hybrid" or dense_on,
    )

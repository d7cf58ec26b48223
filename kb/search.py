"""Hybrid search: vector similarity and full text, fused in one SQL statement
that also applies the permission filter.

The permitted collections come from ``Collection.objects.for_user`` as a
subquery inside the same statement (never filtered in Python afterwards).
The dense half takes an exact scan when the permitted set is small (HNSW
filters after its scan and would return too few rows) and the HNSW index with
iterative scan otherwise. Fusion is weighted reciprocal rank fusion; the dense
list is skipped when the query's language is one the embedding model does not
cover (all-MiniLM-L6-v2 knows no Chinese), so fusion never drags search below
its better half.
"""

from __future__ import annotations

import html
import math
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse

from accounts.models import ApiToken
from kb.embedding import embedder_for_model, embedding_model_label, vector_literal
from kb.models import Action, Collection
from kb.rerank import RERANK_CANDIDATES, rerank_scores, reranker_enabled
from kb.text import TEXT_SEARCH_CONFIG, cjk_ratio, segment

RRF_K = 60
CANDIDATES = 100
# The HNSW search list. Measured at a million chunks (bench/search_scale.py
# --ef): recall@10 0.932-0.956 at 80 and 0.959-0.966 at 120 with every chunk
# permitted (index builds differ), 0.952 and 0.970-0.976 at 10 %; larger
# lists cost more than they gain at 10 % (200: p95 up by a tenth); pgvector's
# default of 40 finds about 0.88-0.91.
HNSW_EF_SEARCH = 120
# Below this many chunks in the permitted collections, scan them exactly.
EXACT_SCAN_MAX_CHUNKS = 20_000
# psycopg prepares a statement after this many executions unless told
# otherwise; the search asks for the statements it wants prepared.
PREPARE_ONLY_WHEN_ASKED = 2**31 - 1
_WORD = re.compile(r"\w+", re.UNICODE)
# The query vector is needed only by the last statement, so it is computed on
# these threads while the first statements run (the encoders release the GIL).
_QUERY_EMBEDDING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="query-embed")
# The model this process last found in the index: the one to embed queries
# with before the index row is read (checked once it is; see search_chunks).
_index_model_seen: str | None = None


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

    @property
    def url(self) -> str:
        return chunk_url(self.document_id, self.chunk_id)

    @property
    def snippet_html(self) -> str:
        return highlight(self.text, self._terms)

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


TERM_STATS_SQL = """
WITH permitted AS ({permitted}),
terms AS (
    SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('{config}', %(text)s))) AS lexeme
)
SELECT t.lexeme,
       (SELECT count(*) FROM kb_chunk c
         WHERE c.search_vector @@ quote_literal(t.lexeme)::tsquery
           AND c.collection_id IN (SELECT id FROM permitted)) AS df
FROM terms t
LIMIT 64
"""


@dataclass(frozen=True)
class LexicalTerms:
    lexemes: list[str]
    idfs: list[float]
    # Includes the words no permitted chunk contains, so a passage's coverage
    # says how much of the question it matches.
    total_idf: float


def lexical_terms(rows: list[tuple[str, int]], total: int) -> LexicalTerms:
    """The query's normalised words (``rows`` of TERM_STATS_SQL: each lexeme
    with the number of permitted chunks holding it) with their BM25 IDF over
    the ``total`` chunks the user may read (statistics of hidden collections
    never shape the ranking). PostgreSQL's own ranking has no IDF, which ranks
    "cells" like "apoptosis"."""
    lexemes, idfs = [], []
    absent_idf = 0.0
    for lexeme, df in rows:
        idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
        if df and "'" not in lexeme and "\\" not in lexeme:
            lexemes.append(lexeme)
            idfs.append(idf)
        elif not df:
            absent_idf += idf
    return LexicalTerms(lexemes, idfs, sum(idfs) + absent_idf)


def chunk_url(document_id: int, chunk_id: int, page: int | None = None) -> str:
    """The document's page in the portal, scrolled to this passage (highlighted)."""
    url = reverse("ingest:document-detail", args=[document_id])
    page_part = f"&page={page}" if page else ""
    return f"{url}?chunk={chunk_id}{page_part}#chunk-{chunk_id}"


def dense_weight(query: str) -> float:
    """How much the vector list counts: zero when the model does not read the
    query's language."""
    if settings.EMBEDDING_LANGUAGES == "multilingual":
        return 1.0
    return 0.0 if cjk_ratio(query) > 0.3 else 1.0


def highlight(text: str, terms: tuple[str, ...]) -> str:
    """HTML-escaped ``text`` with the query's words in <mark>."""
    escaped = html.escape(text)
    pattern = _terms_pattern(terms)
    if pattern is None:
        return escaped
    return pattern.sub(lambda match: f"<mark>{match.group(0)}</mark>", escaped)


@lru_cache(maxsize=256)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern per query, shared by its hits (longest words first)."""
    words = sorted({term for term in terms if len(term) > 1}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(
        "|".join(re.escape(html.escape(word)) for word in words), re.IGNORECASE
    )


def _filters_sql(filters: SearchFilters) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.collection_ids:
        clauses.append("c.collection_id = ANY(%s::bigint[])")
        params.append(list(filters.collection_ids))
    if filters.document_ids:
        clauses.append("c.document_id = ANY(%s::bigint[])")
        params.append(list(filters.document_ids))
    if filters.content_types or filters.uploaded_after or filters.uploaded_before:
        sub, sub_params = [], []
        if filters.content_types:
            sub.append("d.content_type = ANY(%s::text[])")
            sub_params.append(list(filters.content_types))
        if filters.uploaded_after:
            sub.append("d.created_at >= %s")
            sub_params.append(filters.uploaded_after)
        if filters.uploaded_before:
            sub.append("d.created_at < %s")
            sub_params.append(filters.uploaded_before)
        conditions = " AND ".join(sub)  # fixed clauses; values are parameters
        clauses.append(
            f"c.document_id IN (SELECT d.id FROM kb_document d WHERE {conditions})"  # noqa: S608
        )
        params.extend(sub_params)
    return ("".join(f" AND {clause}" for clause in clauses), params)


_permitted_sql_cache: dict[tuple[Any, ...], tuple[str, tuple[Any, ...]]] = {}


def _permitted_sql(user: Any, token: ApiToken | None) -> tuple[str, list[Any]]:
    """The permitted collections as SQL for a subquery. The statement reads
    the grants when it runs; its text depends only on the attributes in the
    key, so it is compiled once per user and token state, not per search."""
    key = (
        getattr(user, "pk", None),
        getattr(user, "is_authenticated", False),
        getattr(user, "is_active", False),
        *(
            (token.pk, token.is_usable, token.read_only, token.collection_scoped)
            if token is not None
            else ()
        ),
    )
    compiled = _permitted_sql_cache.get(key)
    if compiled is None:
        queryset = Collection.objects.for_user(user, Action.VIEW, token=token)
        sql, params = queryset.values("id").query.sql_with_params()
        if len(_permitted_sql_cache) >= 10_000:
            _permitted_sql_cache.clear()
        compiled = _permitted_sql_cache[key] = (sql, tuple(params))
    return compiled[0], list(compiled[1])


SEARCH_SQL = """
WITH permitted AS ({permitted}),
nearest AS (
    SELECT c.id, {distance} AS distance
    FROM kb_chunk c
    WHERE %(dense_on)s AND {dense_permitted}
      AND c.embedding_model = %(model)s{filters}
    ORDER BY {distance}
    LIMIT %(candidates)s
),
dense AS (
    SELECT id, row_number() OVER (ORDER BY distance) AS rank, 1 - distance AS similarity
    FROM nearest
),
lexical_scored AS (
    SELECT c.id,
           (SELECT sum(w.idf * ts_rank('{{1, 1, 1, 1}}', c.search_vector, quote_literal(w.lexeme)::tsquery, 1))
              FROM unnest(%(lexemes)s::text[], %(idfs)s::float8[]) AS w(lexeme, idf)) AS score,
           (SELECT sum(w.idf) FROM unnest(%(lexemes)s::text[], %(idfs)s::float8[]) AS w(lexeme, idf)
             WHERE c.search_vector @@ quote_literal(w.lexeme)::tsquery) / %(total_idf)s AS coverage
    FROM kb_chunk c
    WHERE %(lexical_on)s AND c.search_vector @@ %(lexical)s::tsquery
      AND c.collection_id IN (SELECT id FROM permitted){filters}
),
lexical AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank, coverage
    FROM lexical_scored
    ORDER BY score DESC, id
    LIMIT %(candidates)s
),
fused AS (
    SELECT id, sum(weight / (%(rrf_k)s + rank)) AS score,
           min(rank) FILTER (WHERE source = 'dense') AS dense_rank,
           min(rank) FILTER (WHERE source = 'lexical') AS lexical_rank,
           max(similarity) AS similarity, max(coverage) AS coverage
    FROM (
        SELECT id, rank, %(dense_weight)s::float AS weight, 'dense' AS source,
               similarity, NULL::float8 AS coverage FROM dense
        UNION ALL
        SELECT id, rank, 1.0::float, 'lexical', NULL::float8, coverage FROM lexical
    ) ranked
    GROUP BY id
)
SELECT c.id, c.document_id, d.title, c.collection_id, col.name, c.page, c.section_title,
       c.text, f.score, f.dense_rank, f.lexical_rank, f.similarity, f.coverage
FROM fused f
JOIN kb_chunk c ON c.id = f.id
JOIN kb_document d ON d.id = c.document_id
JOIN kb_collection col ON col.id = c.collection_id
ORDER BY f.score DESC, c.id
LIMIT %(limit)s
"""


# The dense list's permission filter: the permitted collections as an array,
# computed once in this statement's snapshot. The exact path reads just those
# collections through the collection index (the array is its index key, so no
# chunk is checked one by one). The HNSW path makes the same check a filter the
# collection index cannot serve: the planner guesses the permission subquery
# at one row, and at tens of thousands of chunks it then walked every
# permitted collection through that index and sorted all their chunks instead
# of scanning the HNSW index (measured at 50,000 chunks with every collection
# permitted: 38 ms instead of a few).
EXACT_PERMITTED = "c.collection_id = ANY(ARRAY(SELECT id FROM permitted))"
HNSW_PERMITTED = "(c.collection_id + 0) = ANY(ARRAY(SELECT id FROM permitted))"


# Settings local to the search's transaction, given as parallel arrays of
# names and values; and putting named ones back to the session's values.
SETTINGS_SET_SQL = (
    "SELECT set_config(name, value, true)"
    " FROM unnest(%s::text[], %s::text[]) AS setting(name, value)"
)
SETTINGS_RESET_SQL = "SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name = ANY(%s::text[])"


def _path_settings(path: str, candidates: int) -> dict[str, str]:
    """Settings for the search statement. Both paths keep one generic plan
    per connection instead of planning each search (planning took 0.8 ms,
    more than half of running it on the HNSW path). The HNSW path's plan is
    the index scan whatever the values. The exact path runs only for small
    permitted sets, for which reading their collections through the
    collection index is always right; without the values a generic plan
    could guess a large share of the table (with few collections) and scan
    all of it, so sequential scans are ruled out."""
    if path == "hnsw":
        return {
            "hnsw.iterative_scan": "relaxed_order",
            "hnsw.ef_search": str(max(candidates, HNSW_EF_SEARCH)),
            "plan_cache_mode": "force_generic_plan",
        }
    return {
        "max_parallel_workers_per_gather": "0",
        "enable_seqscan": "off",
        "plan_cache_mode": "force_generic_plan",
    }


@dataclass(frozen=True)
class PermittedChunks:
    count: int
    # What the index holds (None before its row exists).
    index_model: str | None
    index_dimensions: int | None


PERMITTED_CHUNKS_SQL = """
SELECT coalesce(sum(chunk_count), 0),
       (SELECT model_name FROM kb_embeddingindex WHERE id = 1),
       (SELECT dimensions FROM kb_embeddingindex WHERE id = 1)
FROM kb_document WHERE collection_id IN ({permitted})
"""


def _permitted_chunks(row: tuple[Any, ...]) -> PermittedChunks:
    """``row`` of PERMITTED_CHUNKS_SQL: how many chunks the permitted
    collections hold, from the documents' counts (one row per document
    instead of one per chunk: cheap at a million chunks), and the index's
    model."""
    count, model, dimensions = row
    return PermittedChunks(int(count), model, dimensions)


def _statement_cursor() -> psycopg.Cursor[Any]:
    """A cursor on Django's connection (and so in its transaction) that binds
    parameters on the server, so that the search statements can be prepared:
    parsing and planning the fused statement took longer than running it
    (0.8 ms of planning against 1.5 ms of execution at a million chunks).
    Django's own cursors bind on the client and are never prepared."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Only statements executed with prepare=True; see the note on
        # PgBouncer in the README.
        raw.prepare_threshold = PREPARE_ONLY_WHEN_ASKED
    return psycopg.Cursor(raw)


def _embed_query(query: str, model_name: str) -> tuple[np.ndarray, float]:
    """The query's vector by ``model_name``, and how long it took (ms)."""
    started = time.perf_counter()
    vector = embedder_for_model(model_name).encode([query])[0]
    return vector, (time.perf_counter() - started) * 1000


def search_chunks(
    *,
    user: Any,
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
    from kb.index import checked_embedder

    global _index_model_seen
    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    query = query.strip()[:2000]
    if not query:
        return SearchResult([], False, "empty", timings)
    weight = (
        dense_weight(query) if mode == "hybrid" else (1.0 if mode == "dense" else 0.0)
    )
    dense_on = weight > 0
    rerank = mode == "hybrid" and reranker_enabled()
    wanted = limit
    if rerank:
        limit = max(limit, RERANK_CANDIDATES)
    vector_text = None
    pending: Future[tuple[np.ndarray, float]] | None = None
    if dense_on and query_vector is None:
        query_model = _index_model_seen or embedding_model_label()
        pending = _QUERY_EMBEDDING.submit(_embed_query, query, query_model)
    # Fusion needs a deep list from each half; a dense-only query just its page.
    candidates = max(CANDIDATES, limit) if mode == "hybrid" else limit
    permitted_sql, permitted_params = _permitted_sql(user, token)
    # Named (p0, p1, ...) once, for the three statements that embed it.
    permitted_sql = _named(permitted_sql, "p")
    permitted_named = {
        f"p{index}": value for index, value in enumerate(permitted_params)
    }
    filters_sql, filter_params = _filters_sql(filters)
    started = time.perf_counter()
    path = "none"
    nested = connection.in_atomic_block
    with transaction.atomic():
        cursor, terms_cursor = _statement_cursor(), _statement_cursor()
        # One round trip for the statements that do not depend on each other
        # (each cursor keeps its last statement's rows).
        with cursor.connection.pipeline():
            # A model switch (manage.py reembed) cannot commit while this
            # transaction runs, so the model read below is the one the chunks hold.
            cursor.execute("LOCK TABLE kb_chunk IN ACCESS SHARE MODE")
            # One look at the permitted set: its size is BM25's N and picks
            # the dense path.
            cursor.execute(
                PERMITTED_CHUNKS_SQL.format(permitted=permitted_sql),
                permitted_named,
                prepare=True,
            )
            if mode != "dense":
                terms_cursor.execute(
                    TERM_STATS_SQL.format(
                        permitted=permitted_sql, config=TEXT_SEARCH_CONFIG
                    ),
                    {"text": segment(query), **permitted_named},
                    prepare=True,
                )
        permitted = _permitted_chunks(cursor.fetchone() or ())
        count = permitted.count
        terms = (
            lexical_terms(terms_cursor.fetchall(), count)
            if mode != "dense"
            else LexicalTerms([], [], 0.0)
        )
        # No index row yet: nothing was ever re-embedded.
        index_model = permitted.index_model or query_model or embedding_model_label()
        if dense_on:
            if pending is not None:
                query_vector, timings["embed_ms"] = pending.result()
            embedder = checked_embedder(index_model, permitted.index_dimensions)
            if query_model not in (None, index_model):
                # The index changed models (manage.py reembed) since this
                # process last looked, or the caller's vector predates it.
                query_vector = embedder.encode([query])[0]
            _index_model_seen = index_model
            vector_text = vector_literal(query_vector)
        query_model = index_model
        lexemes, idfs = terms.lexemes, terms.idfs
        lexical_on = bool(lexemes)
        local_settings: dict[str, str] = {}
        if dense_on:
            path = "exact" if count <= EXACT_SCAN_MAX_CHUNKS else "hnsw"
            local_settings = _path_settings(path, candidates)
        # An exact scan is forced by ordering on an expression the index cannot serve.
        distance = (
            "(c.embedding <=> %(vector)s::halfvec) + 0"
            if path == "exact"
            else "c.embedding <=> %(vector)s::halfvec"
        )
        sql = SEARCH_SQL.format(
            permitted=permitted_sql,
            dense_permitted=HNSW_PERMITTED if path == "hnsw" else EXACT_PERMITTED,
            filters=_named(filters_sql, "f"),
            distance=distance,
            config=TEXT_SEARCH_CONFIG,
        )
        params: dict[str, Any] = {
            "vector": vector_text or "[0]",
            "model": query_model or "",
            # A valid placeholder when the lexical list is off (lexical_on is false).
            "lexical": " | ".join(f"'{lexeme}'" for lexeme in lexemes)
            or "'placeholder'",
            "lexemes": lexemes,
            "idfs": idfs,
            "total_idf": terms.total_idf or 1.0,
            "dense_on": dense_on,
            "lexical_on": lexical_on,
            "dense_weight": weight,
            "candidates": candidates,
            "rrf_k": RRF_K,
            "limit": limit,
            **permitted_named,
            **{f"f{index}": value for index, value in enumerate(filter_params)},
        }
        if not dense_on:
            sql = sql.replace("%(vector)s::halfvec", "NULL::halfvec")
        # The path's settings and the search in one round trip (the cursor
        # keeps the last statement's rows).
        with cursor.connection.pipeline():
            if local_settings:
                cursor.execute(
                    SETTINGS_SET_SQL,
                    [list(local_settings), list(local_settings.values())],
                )
            cursor.execute(sql, params, prepare=True)
            if local_settings and nested:
                # Local settings last until the caller's transaction ends.
                terms_cursor.execute(SETTINGS_RESET_SQL, [list(local_settings)])
        rows = cursor.fetchall()
    timings["sql_ms"] = (time.perf_counter() - started) * 1000
    words = tuple(dict.fromkeys(_WORD.findall(segment(query).lower())))
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
        path if dense_on else "lexical",
        timings,
        query_model if dense_on else None,
    )


def _named(sql: str, prefix: str) -> str:
    """Turn positional %s placeholders into %(prefixN)s so they mix with the
    statement's named parameters (literal % in ORM SQL is already doubled)."""
    counter = iter(range(10_000))
    return re.sub(r"%s", lambda _match: f"%({prefix}{next(counter)})s", sql)

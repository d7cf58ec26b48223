"""Hybrid search: vector similarity and full text, fused in one SQL statement
that also applies the permission filter.

The permitted collections come from ``Collection.objects.for_user`` as a
subquery inside the same statement (never filtered in Python afterwards),
narrowed to those a collection filter names. The dense half takes an exact
scan when the searched set is small (HNSW filters after its scan and would
return too few rows) and the HNSW index with iterative scan otherwise.
Fusion is reciprocal rank fusion with the lexical list weighted per query by
how far each list can be trusted; the dense list is skipped when the query's
language is one the embedding model does not read (all-MiniLM-L6-v2 knows no
Chinese).

A hybrid search that still has to embed its query, and is the only search
its process is running, sends its lexical half first, as a statement of its
own, while the model embeds the query; the second statement ranks the dense
half, checks the lexical list against the permitted collections and the
filters again, and fuses the two. Each statement applies the permission
filter itself.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import psycopg
from django.db import connection, transaction
from django.urls import reverse
from django.utils.translation import gettext
from pgvector import HalfVector
from psycopg.adapt import Dumper
from psycopg.pq import Format

from accounts.models import ApiToken
from kb.embedding import embedder_for_model, embedding_model_label, model_reads
from kb.models import Action, Collection, PermissionShape, permission_shape
from kb.rerank import RERANK_CANDIDATES, rerank_scores, reranker_enabled
from kb.search_sql import (
    EXACT_BY_COLLECTION,
    EXACT_BY_DOCUMENT,
    FILTERED_DOCUMENTS,
    HITS_SELECT,
    LEXICAL_COMPUTED,
    LEXICAL_GIVEN,
    LEXICAL_LIST,
    SEARCH_CTES,
    SETTINGS_RESET_SQL,
    SETTINGS_SET_SQL,
    StatementPart,
)
from kb.text import TEXT_SEARCH_CONFIG, segment

# Fusion is weighted reciprocal rank fusion. The lexical list's weight
# beside the dense list's is set per query (the ``lexical_trust`` part of the
# statement): exp(BIAS + COVERAGE x the best lexical passage's share of the
# query's word weight + COVERAGE_GAP x how far it stands above the next nine
# - SIMILARITY x the best dense passage's cosine - SIMILARITY_GAP x how far
# that stands above the next nine). A fixed weight lost to its better half
# by 0.08 nDCG@10 on COVID-QA, where the English model's dense list is weak,
# and let a few shared characters drown the multilingual model's
# cross-language list. The constants (and RRF_K: a small one lets a clear
# first place count) were fitted on SciFact, COVID-QA and XQuAD en and
# zh->en and checked on the other XQuAD sets (docs/benchmarks.md).
RRF_K = 10
LEXICAL_TRUST_BIAS = 0.0
LEXICAL_TRUST_COVERAGE = 4.0
LEXICAL_TRUST_COVERAGE_GAP = 4.0
LEXICAL_TRUST_SIMILARITY = 4.0
LEXICAL_TRUST_SIMILARITY_GAP = 4.0
CANDIDATES = 100
# The HNSW search list. Measured at a million chunks (bench/search_scale.py
# --ef, and one query set side by side): with every chunk permitted, recall@10
# 0.932-0.956 at 80 and 0.947-0.972 at 120 (index builds and query sets
# differ), 0.982 at 160 and 0.987 at 200 on the set that gave 0.972 at 120;
# at 10 %, 0.981 at 120 and 0.990 at 160, no slower (fewer scans need a second
# round of the iterative search). pgvector's default of 40 finds about
# 0.88-0.92.
HNSW_EF_SEARCH = 160
# Below this many chunks in the permitted collections, scan them exactly.
EXACT_SCAN_MAX_CHUNKS = 20_000
# psycopg prepares a statement after this many executions unless told
# otherwise; the search asks for the statements it wants prepared.
PREPARE_ONLY_WHEN_ASKED = 2**31 - 1
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


def highlight(text: str, terms: tuple[str, ...]) -> str:
    """HTML-escaped ``text`` with the query's words in <mark>, matched
    case-insensitively anywhere (Chinese has no spaces to stop at). At each
    place the longest word wins, left to right, as an alternation of the
    words longest first would match. Found with ``str.find``: 0.25 ms for a
    page of ten SciFact passages where such a pattern took 0.8, with the same
    marks on all 300 queries' pages. Words are found in the text before it is
    escaped, so none lands inside an entity (``&lt;`` for a query with "lt")."""
    words = _highlight_words(terms)
    folded = text.lower()
    if not words or len(folded) != len(text):
        # A character whose lower case is longer (İ) would shift positions;
        # such a passage goes unmarked rather than marked in the wrong place.
        return html.escape(text)
    found: list[tuple[int, int]] = []
    for word in words:
        at = folded.find(word)
        while at != -1:
            found.append((at, -len(word)))
            at = folded.find(word, at + 1)
    found.sort()
    parts: list[str] = []
    done = 0
    for start, minus_length in found:
        if start < done:
            continue
        end = start - minus_length
        parts += [
            html.escape(text[done:start]),
            "<mark>",
            html.escape(text[start:end]),
            "</mark>",
        ]
        done = end
    parts.append(html.escape(text[done:]))
    return "".join(parts)


@lru_cache(maxsize=256)
def _highlight_words(terms: tuple[str, ...]) -> tuple[str, ...]:
    """The words worth marking: two characters or more, in lower case."""
    return tuple({term.lower() for term in terms if len(term) > 1})


def _documents_sql(filters: SearchFilters) -> tuple[str, list[Any]]:
    """The document, type and date filters as conditions on ``kb_document d``
    (empty when there are none). The collection filter narrows the permitted
    collections themselves (``_scope_sql``)."""
    conditions: list[str] = []
    params: list[Any] = []
    if filters.document_ids:
        conditions.append("d.id = ANY(%s::bigint[])")
        params.append(list(filters.document_ids))
    if filters.content_types:
        conditions.append("d.content_type = ANY(%s::text[])")
        params.append(list(filters.content_types))
    if filters.uploaded_after:
        conditions.append("d.created_at >= %s")
        params.append(filters.uploaded_after)
    if filters.uploaded_before:
        conditions.append("d.created_at < %s")
        params.append(filters.uploaded_before)
    return " AND ".join(conditions), params


def _scope_sql(
    permitted_sql: str, permitted_params: list[Any], filters: SearchFilters
) -> tuple[str, list[Any]]:
    """The collections a search ranks over: the permitted ones, narrowed to
    those the collection filter names. Everything that depends on the size
    of the searched set (the dense path, BM25's statistics) then depends on
    what the user asked to search, not on what else they may read."""
    if not filters.collection_ids:
        return permitted_sql, permitted_params
    narrowed = (
        f"SELECT * FROM ({permitted_sql}) AS readable "  # noqa: S608 - ORM SQL
        "WHERE readable.id = ANY(%s::bigint[])"
    )
    return narrowed, [*permitted_params, list(filters.collection_ids)]


_permitted_sql_cache: dict[PermissionShape, tuple[str, tuple[Any, ...]]] = {}


def _permitted_sql(user: Any, token: ApiToken | None) -> tuple[str, list[Any]]:
    """The permitted collections as SQL for a subquery. The statement reads
    the grants when it runs; its text and values follow from the permission
    shape alone (``kb.models.permission_shape``, which ``for_user`` itself
    goes through), so it is compiled once per shape, not per search, and can
    never be one made for other attributes."""
    shape = permission_shape(user, Action.VIEW, token)
    compiled = _permitted_sql_cache.get(shape)
    if compiled is None:
        queryset = Collection.objects.for_shape(shape)
        # No ORDER BY: the statement only needs these two columns.
        sql, params = (
            queryset.order_by().values("id", "chunk_count").query.sql_with_params()
        )
        if len(_permitted_sql_cache) >= 10_000:
            _permitted_sql_cache.clear()
        compiled = _permitted_sql_cache[shape] = (sql, tuple(params))
    return compiled[0], list(compiled[1])


# How many of the query's distinct words are weighed.
MAX_QUERY_TERMS = 64
# The lexical list's candidates are the permitted chunks holding the query's
# rarer words: its words rarest first, until they are in this many permitted
# chunks (always at least the rarest); candidates are ranked with all words.
LEXICAL_SEED_CHUNKS = 1_000
# At most this many candidates are ranked (a query of only common words).
LEXICAL_MAX_MATCHED = 20_000


def _search_settings(candidates: int) -> dict[str, str]:
    """Settings for the search statement: the HNSW scan's, and one generic
    plan per connection instead of planning each search (planning took
    0.8 ms, more than half of running it on the HNSW path). Without the
    values a generic plan cannot see how selective the query's words are,
    and on a table of a few thousand chunks it then read every chunk to
    count each word (cmrc2018-zh: 26 ms a word instead of well under one
    through the full-text index), so sequential scans are ruled out; the
    exact path's shape (one index scan per permitted collection) does not
    depend on it either way."""
    return {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.ef_search": str(max(candidates, HNSW_EF_SEARCH)),
        "plan_cache_mode": "force_generic_plan",
        "enable_seqscan": "off",
    }


@dataclass(frozen=True)
class SearchScope:
    """The first columns of every row of a search statement."""

    # Chunks in the permitted collections.
    total: int
    dense_path: str
    # What the index holds (None before its row exists).
    index_model: str | None
    index_dimensions: int | None


@dataclass(frozen=True)
class _QueryVector:
    """The query's vector as a statement parameter."""

    values: np.ndarray


class _QueryVectorDumper(Dumper):
    """Sends a query vector in pgvector's binary form: formatting 384
    numbers as text took 0.09 ms a search, this 0.004 ms. No type of its
    own: the statement's ``::halfvec`` gives the parameter its type."""

    format = Format.BINARY
    oid = 0

    def dump(self, obj: _QueryVector) -> bytes:
        return HalfVector(obj.values).to_binary()


def prepare_search_connection(raw: psycopg.Connection[Any]) -> None:
    """Ready a connection for the search statements: prepared only when
    asked (see the note on PgBouncer in the README), and query vectors sent
    in binary."""
    if raw.prepare_threshold is None:
        raw.prepare_threshold = PREPARE_ONLY_WHEN_ASKED
    raw.adapters.register_dumper(_QueryVector, _QueryVectorDumper)


def _statement_cursor() -> psycopg.RawCursor[Any]:
    """A cursor on Django's connection (and so in its transaction) that binds
    parameters on the server, so that the search statements can be prepared:
    parsing and planning the fused statement took longer than running it
    (0.8 ms of planning against 1.5 ms of execution at a million chunks).
    Django's own cursors bind on the client and are never prepared. It takes
    PostgreSQL's own placeholders (see ``_ServerSQL``)."""
    connection.ensure_connection()
    raw = connection.connection
    prepare_search_connection(raw)
    return psycopg.RawCursor(raw)


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@dataclass(frozen=True)
class _ServerSQL:
    """A statement in PostgreSQL's placeholders ($1, $2, ...) and the name
    of the value each one takes. psycopg reparses a statement's %(name)s
    placeholders on every execution once it is longer than 4,096 characters,
    as the search statement is: 0.11 ms a search, a tenth of a small one."""

    text: str
    names: tuple[str, ...]

    @classmethod
    def from_named(cls, sql: str) -> _ServerSQL:
        names: dict[str, int] = {}

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            number = names.setdefault(name, len(names) + 1)
            return f"${number}"

        if "%" in _PLACEHOLDER.sub("", sql):
            raise ValueError("The search statement has a placeholder with no name.")
        return cls(_PLACEHOLDER.sub(placeholder, sql), tuple(names))

    def values(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


@lru_cache(maxsize=1024)
def _search_sql(
    permitted_sql: str,
    documents_sql: str,
    dense_on: bool,
    candidates: int,
    part: StatementPart = "whole",
) -> _ServerSQL:
    """The search statement with the permission subquery and the filters in
    it, made once per distinct text instead of per search. ``part``:
    ``whole``, or ``lexical_list`` and ``given_lexical`` (the two statements
    of a hybrid search that embeds its query meanwhile)."""
    ctes = SEARCH_CTES.replace(
        "{lexical}", LEXICAL_GIVEN if part == "given_lexical" else LEXICAL_COMPUTED
    )
    last_select = LEXICAL_LIST if part == "lexical_list" else HITS_SELECT
    documents = bool(documents_sql)
    sql = (ctes + last_select).format(
        permitted=_named(permitted_sql, "p"),
        filtered_documents=FILTERED_DOCUMENTS.format(
            conditions=_named(documents_sql, "f")
        )
        if documents
        else "",
        path_total="(SELECT coalesce(sum(chunk_count), 0) FROM filtered_documents)"
        if documents
        else "counted.total",
        exact_source=EXACT_BY_DOCUMENT if documents else EXACT_BY_COLLECTION,
        filters=" AND c.document_id IN (SELECT id FROM filtered_documents)"
        if documents
        else "",
        config=TEXT_SEARCH_CONFIG,
        # In the text, not a parameter, so that the generic plan knows how
        # few rows each list takes (a statement per list length: a handful).
        # At 30,000 chunks with every collection permitted: p50 4.1 ms this
        # way, 6.3 ms with a parameter (two runs minutes apart).
        candidates=int(candidates),
    )
    if not dense_on:
        sql = sql.replace("%(vector)s::halfvec", "NULL::halfvec")
    return _ServerSQL.from_named(sql)


@dataclass(frozen=True)
class _SearchStatement:
    """The search statement for one user, token and set of filters, with
    their values."""

    sql: _ServerSQL
    params: dict[str, Any]
    # What ``sql`` was made from, to make the other statement of a search.
    permitted_sql: str
    documents_sql: str
    candidates: int

    @classmethod
    def build(
        cls,
        *,
        user: Any,
        token: ApiToken | None,
        filters: SearchFilters,
        dense_on: bool,
        candidates: int,
        part: StatementPart = "whole",
    ) -> _SearchStatement:
        permitted_sql, permitted_params = _scope_sql(
            *_permitted_sql(user, token), filters
        )
        documents_sql, filter_params = _documents_sql(filters)
        sql = _search_sql(permitted_sql, documents_sql, dense_on, candidates, part)
        params = {f"p{index}": value for index, value in enumerate(permitted_params)}
        params.update({f"f{index}": value for index, value in enumerate(filter_params)})
        return cls(sql, params, permitted_sql, documents_sql, candidates)

    def given_lexical(self) -> _SearchStatement:
        """The second statement of a search that sent its lexical half first:
        same user, token, filters and values."""
        sql = _search_sql(
            self.permitted_sql,
            self.documents_sql,
            True,
            self.candidates,
            "given_lexical",
        )
        return replace(self, sql=sql)

    def run(
        self, params: dict[str, Any], model: str, vector: Any
    ) -> tuple[SearchScope, list[tuple[Any, ...]]]:
        """The scope and the hits' rows. The settings and the statement go
        in one round trip; outside a caller's transaction they form their own
        (it ends with the round trip, and the settings with it), inside one
        the settings are put back before it goes on."""
        values = {
            **params,
            "model": model,
            "vector": _QueryVector(
                np.zeros(1) if vector is None else np.asarray(vector)
            ),
            "dimensions": 0 if vector is None else len(vector),
        }
        local_settings = _search_settings(self.candidates)
        in_transaction = not connection.get_autocommit()
        # Each cursor keeps its last statement's rows.
        cursor, reset_cursor = _statement_cursor(), _statement_cursor()
        # Inside a caller's transaction, a savepoint: a search that fails
        # (a statement timeout, say) leaves that transaction usable.
        with (
            transaction.atomic() if in_transaction else nullcontext(),
            cursor.connection.pipeline(),
        ):
            # Prepared too: planning it each time took longer than running it.
            cursor.execute(
                SETTINGS_SET_SQL,
                [list(local_settings), list(local_settings.values())],
                prepare=True,
            )
            cursor.execute(self.sql.text, self.sql.values(values), prepare=True)
            if in_transaction:
                reset_cursor.execute(
                    SETTINGS_RESET_SQL, [list(local_settings)], prepare=True
                )
        rows = cursor.fetchall()
        total, dense_path, index_model, index_dimensions = rows[0][:4]
        scope = SearchScope(int(total), dense_path, index_model, index_dimensions)
        return scope, [row[4:] for row in rows if row[4] is not None]


def _tuning_values() -> dict[str, Any]:
    """The statement's values that are the module's settings, the same for
    every search (read when asked, so a test may change one)."""
    return {
        "max_terms": MAX_QUERY_TERMS,
        "seed_chunks": LEXICAL_SEED_CHUNKS,
        "max_matched": LEXICAL_MAX_MATCHED,
        "exact_max": EXACT_SCAN_MAX_CHUNKS,
        "rrf_k": RRF_K,
        "trust_bias": LEXICAL_TRUST_BIAS,
        "trust_coverage": LEXICAL_TRUST_COVERAGE,
        "trust_coverage_gap": LEXICAL_TRUST_COVERAGE_GAP,
        "trust_similarity": LEXICAL_TRUST_SIMILARITY,
        "trust_similarity_gap": LEXICAL_TRUST_SIMILARITY_GAP,
    }


def _embed_query(query: str, model_name: str) -> tuple[np.ndarray, float]:
    """The query's vector by ``model_name``, and how long it took (ms)."""
    started = time.perf_counter()
    vector = embedder_for_model(model_name).encode_query(query)
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
    user: Any,
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
    from kb.index import checked_embedder

    global _index_model_seen
    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    query = query.strip()[:2000]
    if not query:
        return SearchResult([], False, "empty", timings)
    # Words split as the index splits them: for the full-text query and the
    # words to highlight.
    segmented = segment(query)
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
    candidates = max(CANDIDATES, limit) if mode == "hybrid" else limit
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
    statement = _SearchStatement.build(
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
        **_tuning_values(),
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
        embedder = checked_embedder(scope.index_model, scope.index_dimensions)
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


def _named(sql: str, prefix: str) -> str:
    """Turn positional %s placeholders into %(prefixN)s so they mix with the
    statement's named parameters (literal % in ORM SQL is already doubled)."""
    counter = iter(range(10_000))
    return re.sub(r"%s", lambda _match: f"%({prefix}{next(counter)})s", sql)

"""Building the search statement's text: the permission subquery, the
filters, the SQL of ``kb.search.sql``, and PostgreSQL's placeholders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from accounts.models import ApiToken, Person
from kb.models import Action, Collection, PermissionShape, permission_shape
from kb.search.results import SearchFilters
from kb.search.sql import (
    EXACT_BY_COLLECTION,
    EXACT_BY_DOCUMENT,
    FILTERED_DOCUMENTS,
    HITS_SELECT,
    LEXICAL_COMPUTED,
    LEXICAL_GIVEN,
    LEXICAL_LIST,
    SEARCH_CTES,
    StatementPart,
)
from kb.text import TEXT_SEARCH_CONFIG


def document_conditions_sql(filters: SearchFilters) -> tuple[str, list[Any]]:
    """The document, type and date filters as conditions on ``kb_document d``
    (empty when there are none). The collection filter narrows the permitted
    collections themselves (``scope_sql``)."""
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


def scope_sql(
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


def permitted_collections_sql(
    user: Person, token: ApiToken | None
) -> tuple[str, list[Any]]:
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


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@dataclass(frozen=True)
class ServerSQL:
    """A statement in PostgreSQL's placeholders ($1, $2, ...) and the name
    of the value each one takes. psycopg reparses a statement's %(name)s
    placeholders on every execution once it is longer than 4,096 characters,
    as the search statement is: 0.11 ms a search, a tenth of a small one."""

    text: str
    names: tuple[str, ...]

    @classmethod
    def from_named(cls, sql: str) -> ServerSQL:
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
def search_sql(
    permitted_sql: str,
    documents_sql: str,
    dense_on: bool,
    candidates: int,
    part: StatementPart = "whole",
) -> ServerSQL:
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
    return ServerSQL.from_named(sql)


def _named(sql: str, prefix: str) -> str:
    """Turn positional %s placeholders into %(prefixN)s so they mix with the
    statement's named parameters (literal % in ORM SQL is already doubled)."""
    counter = iter(range(10_000))
    return re.sub(r"%s", lambda _match: f"%({prefix}{next(counter)})s", sql)

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

The package, one job a module: ``statement`` builds the statement's text,
``execute`` runs it, ``vocabulary`` finds which of a Chinese query's
possible words the searched collections hold, ``highlight`` marks passages,
``tuning`` holds the numbers, ``service`` is ``search_chunks``.
"""

from kb.search.execute import prepare_search_connection
from kb.search.highlight import highlight
from kb.search.results import (
    SearchFilters,
    SearchHit,
    SearchResult,
    chunk_url,
    dense_weight,
)
from kb.search.service import search_chunks
from kb.search.tuning import EXACT_SCAN_MAX_CHUNKS

__all__ = [
    "EXACT_SCAN_MAX_CHUNKS",
    "SearchFilters",
    "SearchHit",
    "SearchResult",
    "chunk_url",
    "dense_weight",
    "highlight",
    "prepare_search_connection",
    "search_chunks",
]

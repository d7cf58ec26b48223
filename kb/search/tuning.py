"""The search's tuning: fusion weights, candidate counts and the dense path's
thresholds, read when a search runs (so a test or a benchmark may change one
here), and the planner settings of the search statement."""

from __future__ import annotations

from typing import Any

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


# How many of the query's distinct words are weighed.
MAX_QUERY_TERMS = 64
# The lexical list's candidates are the permitted chunks holding the query's
# rarer words: its words rarest first, until they are in this many permitted
# chunks (always at least the rarest); candidates are ranked with all words.
LEXICAL_SEED_CHUNKS = 1_000
# At most this many candidates are ranked (a query of only common words).
LEXICAL_MAX_MATCHED = 20_000


def search_settings(candidates: int) -> dict[str, str]:
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


def tuning_values() -> dict[str, Any]:
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

"""The text of the search statement (``kb.search`` fills it in and runs
it): the permitted collections, both halves, their fusion and the page of
hits, in one statement."""

from __future__ import annotations

from typing import Literal

# The whole search in one statement, so one round trip:
# - ``scope``: the permitted collections (read when the statement runs, in its
#   snapshot), how many chunks they hold (BM25's N, and it picks the dense
#   path; each collection's count is kept by a trigger, as summing their
#   documents cost 4.7 ms a search at 20,000 documents), and which model and
#   size of vector the index holds. The dense path is "none" when the query
#   vector is not of that model (the index changed models since this process
#   last looked): the caller then embeds the query again and asks once more.
# - ``exact`` and ``approximate``: the dense list, from whichever of the two
#   ``scope`` picked (the other does not run: its condition is checked once,
#   before its scan). HNSW filters after its scan and returns too few rows for
#   a small permitted set, so those are scanned exactly, reading just their
#   collections through the collection index, one collection at a time
#   (OFFSET 0 keeps each a scan of its own, so the plan can never become one
#   scan of the whole table, whatever it guesses of their size). The HNSW
#   path makes the same check a filter the collection index cannot serve: at
#   tens of thousands of chunks the planner otherwise walked every permitted
#   collection through that index and sorted all their chunks instead of
#   scanning the HNSW index (measured at 50,000 chunks: 38 ms instead of a
#   few).
# - ``terms``: the query's normalised words with their BM25 IDF over the
#   chunks the user may read (hidden collections never shape the ranking),
#   from each permitted collection's count of chunks holding the word
#   (``CollectionTerm``, kept by triggers).
#   PostgreSQL's own ranking has no IDF, which ranks "cells" like "apoptosis".
#   A word no permitted chunk holds still counts in ``total_idf``, so a
#   passage's coverage says how much of the question it matches.
# - ``seeds``, ``lexical_path``, ``lexical_matched``: the lexical candidates,
#   the permitted chunks holding the query's rarest words (rarest first until
#   they are in LEXICAL_SEED_CHUNKS permitted chunks; at most
#   LEXICAL_MAX_MATCHED). Scoring every chunk that held any word took seconds
#   at a million chunks for a question with common words (1.6 s at 1 %
#   permitted, 5.1 s at 100 %), with SciFact's nDCG@10 the same either way.
#   They are found through the full-text index (the permission check a
#   filter the collection index cannot serve, as in ``approximate``) or, when
#   the index would hand over more rows than the permitted collections hold,
#   by reading those collections' chunks. Which way is chosen from counts
#   over every collection, but both find the same chunks: hidden collections
#   change how the statement reads, not what it ranks (except when more than
#   LEXICAL_MAX_MATCHED permitted chunks hold the rarest word: then each way
#   keeps the first it reads, in its own order).
# - ``lexical``: the candidates ranked by IDF-weighted ts_rank over all the
#   query's words. A search with no usable word does not run this part.
# - ``lexical_trust`` and ``fused``: reciprocal rank fusion of the two lists,
#   the lexical one weighted per query (``kb.search.tuning.LEXICAL_TRUST_*``).
# ``HITS_SELECT``, the last select, always returns the ``scope`` row, with no
# hit when nothing matched.
SEARCH_CTES = """
WITH permitted AS MATERIALIZED ({permitted}),
{filtered_documents}index_row AS MATERIALIZED (
    -- One row, of NULLs before the index row exists.
    SELECT e.model_name AS model, e.dimensions
    FROM (SELECT 1) AS one LEFT JOIN kb_embeddingindex e ON e.id = 1
),
scope AS MATERIALIZED (
    SELECT ARRAY(SELECT id FROM permitted) AS ids,
           counted.total,
           i.model AS index_model,
           i.dimensions AS index_dimensions,
           CASE
               WHEN NOT %(dense_on)s THEN 'none'
               WHEN coalesce(i.model, %(model)s) <> %(model)s
                    OR coalesce(i.dimensions, %(dimensions)s) <> %(dimensions)s THEN 'none'
               WHEN {path_total} <= %(exact_max)s THEN 'exact'
               ELSE 'hnsw'
           END AS dense_path
    FROM index_row i,
         (SELECT coalesce(sum(chunk_count), 0) AS total FROM permitted) counted
),
exact AS (
    SELECT chunk.id, chunk.distance
    FROM {exact_source}
    WHERE (SELECT dense_path FROM scope) = 'exact'
    ORDER BY chunk.distance
    LIMIT {candidates}
),
approximate AS (
    SELECT c.id, c.embedding <=> %(vector)s::halfvec AS distance
    FROM kb_chunk c
    WHERE (SELECT dense_path FROM scope) = 'hnsw'
      AND (c.collection_id + 0) = ANY((SELECT ids FROM scope)::bigint[])
      AND c.embedding_model = %(model)s{filters}
    ORDER BY c.embedding <=> %(vector)s::halfvec
    LIMIT {candidates}
),
dense AS (
    SELECT id, row_number() OVER (ORDER BY distance) AS rank, 1 - distance AS similarity
    FROM (SELECT id, distance FROM exact UNION ALL SELECT id, distance FROM approximate) nearest
),
words AS (
    SELECT lexeme, quote_literal(lexeme)::tsquery AS query
    FROM unnest(tsvector_to_array(to_tsvector('{config}', %(text)s))) AS lexeme
    WHERE %(lexical_on)s
    LIMIT %(max_terms)s
),
terms AS MATERIALIZED (
    SELECT w.query, counted.df,
           ln(1 + ((SELECT total FROM scope) - counted.df + 0.5)::float8 / (counted.df + 0.5)) AS idf,
           counted.df > 0 AND strpos(w.lexeme, '''') = 0 AND strpos(w.lexeme, '\\') = 0 AS usable,
           counted.chunks_anywhere
    FROM words w
    CROSS JOIN LATERAL (
        -- One read of the word's rows: the permitted ones, and all of them.
        SELECT coalesce(sum(t.chunks) FILTER (
                   WHERE t.collection_id = ANY((SELECT ids FROM scope)::bigint[])), 0) AS df,
               coalesce(sum(t.chunks), 0) AS chunks_anywhere
        FROM kb_collectionterm t
        WHERE t.lexeme = w.lexeme
    ) counted
),
query_terms AS MATERIALIZED (
    SELECT sum(idf) FILTER (WHERE usable OR df = 0) AS total_idf
    FROM terms
),
seeds AS MATERIALIZED (
    SELECT string_agg(query::text, ' | ')::tsquery AS query,
           sum(chunks_anywhere) AS chunks_anywhere
    FROM (
        SELECT query, chunks_anywhere,
               sum(df) OVER (ORDER BY df, query::text ROWS UNBOUNDED PRECEDING) - df AS before
        FROM terms
        WHERE usable
    ) rarest_first
    WHERE before < %(seed_chunks)s
),
lexical_path AS MATERIALIZED (
    SELECT CASE
               WHEN (SELECT query FROM seeds) IS NULL THEN 'none'
               WHEN (SELECT total FROM scope) < (SELECT chunks_anywhere FROM seeds) THEN 'collections'
               ELSE 'index'
           END AS path
),
lexical_matched AS (
    (SELECT c.id, c.search_vector
       FROM kb_chunk c
      WHERE (SELECT path FROM lexical_path) = 'index'
        AND c.search_vector @@ (SELECT query FROM seeds)
        AND (c.collection_id + 0) = ANY((SELECT ids FROM scope)::bigint[]){filters}
      LIMIT %(max_matched)s)
    UNION ALL
    (SELECT chunk.id, chunk.search_vector
       FROM unnest((SELECT ids FROM scope)::bigint[]) AS permitted_collection(id)
      CROSS JOIN LATERAL (
          SELECT c.id, c.search_vector
            FROM kb_chunk c
           WHERE c.collection_id = permitted_collection.id{filters}
          OFFSET 0
      ) chunk
      WHERE (SELECT path FROM lexical_path) = 'collections'
        AND chunk.search_vector @@ (SELECT query FROM seeds)
      LIMIT %(max_matched)s)
),
lexical_scored AS (
    -- A word a chunk does not hold ranks 0 in it, so one ts_rank a word
    -- gives both the score and whether the chunk holds the word.
    SELECT c.id, ranked.score, ranked.matched_idf / (SELECT total_idf FROM query_terms) AS coverage
    FROM lexical_matched c
    CROSS JOIN LATERAL (
        SELECT sum(t.idf * word.rank) AS score,
               sum(t.idf) FILTER (WHERE word.rank > 0) AS matched_idf
        FROM terms t
        CROSS JOIN LATERAL (
            SELECT ts_rank('{{1, 1, 1, 1}}', c.search_vector, t.query, 1) AS rank
        ) word
        WHERE t.usable
    ) ranked
),
{lexical}
lexical_trust AS MATERIALIZED (
    -- The lexical list's weight beside the dense list's: higher the more of
    -- the query's words its best passage holds and the further that passage
    -- stands above the next ones, lower the closer the best dense passage
    -- is to the query and the further it stands above the next ones
    -- (LEXICAL_TRUST_*).
    SELECT exp(%(trust_bias)s
               + %(trust_coverage)s * coalesce(top.coverage, 0)
               + %(trust_coverage_gap)s * coalesce(top.coverage - top.next_coverage, 0)
               - %(trust_similarity)s * coalesce(nearest.similarity, 0)
               - %(trust_similarity_gap)s
                 * coalesce(nearest.similarity - nearest.next_similarity, 0)) AS weight
    FROM (SELECT max(coverage) FILTER (WHERE rank = 1) AS coverage,
                 avg(coverage) FILTER (WHERE rank BETWEEN 2 AND 10) AS next_coverage
            FROM lexical) top,
         (SELECT max(similarity) FILTER (WHERE rank = 1) AS similarity,
                 avg(similarity) FILTER (WHERE rank BETWEEN 2 AND 10) AS next_similarity
            FROM dense) nearest
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
        SELECT id, rank, (SELECT weight FROM lexical_trust), 'lexical', NULL::float8,
               coverage FROM lexical
    ) ranked
    GROUP BY id
)
"""
HITS_SELECT = """
SELECT s.total, s.dense_path, s.index_model, s.index_dimensions,
       c.id, c.document_id, d.title, c.collection_id, col.name, c.page, c.section_title,
       c.text, f.score, f.dense_rank, f.lexical_rank, f.similarity, f.coverage
FROM scope s
LEFT JOIN (
    fused f
    JOIN kb_chunk c ON c.id = f.id
    JOIN kb_document d ON d.id = c.document_id
    JOIN kb_collection col ON col.id = c.collection_id
) ON true
-- Tables of contents and indexes repeat every heading's words: after content.
ORDER BY c.is_navigation, f.score DESC, c.id
LIMIT %(limit)s
"""
# The exact scan reads the searched collections one at a time through the
# collection index, or, under a document, type or date filter, the matching
# documents one at a time through the chunks' (document, position) index.
EXACT_BY_COLLECTION = """unnest((SELECT ids FROM scope)::bigint[]) AS permitted_collection(id)
    CROSS JOIN LATERAL (
        SELECT c.id, c.embedding <=> %(vector)s::halfvec AS distance
        FROM kb_chunk c
        WHERE c.collection_id = permitted_collection.id
          AND c.embedding_model = %(model)s
        OFFSET 0
    ) chunk"""
EXACT_BY_DOCUMENT = """filtered_documents doc
    CROSS JOIN LATERAL (
        SELECT c.id, c.embedding <=> %(vector)s::halfvec AS distance
        FROM kb_chunk c
        WHERE c.document_id = doc.id
          AND c.embedding_model = %(model)s
          AND (c.collection_id + 0) = ANY((SELECT ids FROM scope)::bigint[])
        OFFSET 0
    ) chunk"""
# The documents that pass a document, type or date filter, in the searched
# collections: the dense path is chosen by their chunks, not by all the
# collections hold (BM25's statistics stay per collection: the word counts
# are kept per collection).
FILTERED_DOCUMENTS = """filtered_documents AS MATERIALIZED (
    SELECT d.id, d.chunk_count
    FROM kb_document d
    WHERE d.collection_id = ANY(ARRAY(SELECT id FROM permitted)) AND {conditions}
),
"""
# Which statement of a search: the whole one, or one of the two a hybrid
# search sends when it embeds its query while its lexical half runs.
StatementPart = Literal["whole", "lexical_list", "given_lexical"]

# A hybrid search whose query is still being embedded runs as two
# statements: the first gives the lexical list alone (``LEXICAL_LIST`` in
# place of ``HITS_SELECT``), the second takes that list (``LEXICAL_GIVEN`` in
# place of the lexical CTE), runs the dense half and fuses them as above. The list is
# checked against the permitted collections and the filters again, as the
# second statement reads them: a grant revoked in between leaves its chunks
# out.
LEXICAL_COMPUTED = """lexical AS (
    SELECT id, row_number() OVER (ORDER BY score DESC, id) AS rank, coverage
    FROM lexical_scored
    ORDER BY score DESC, id
    LIMIT {candidates}
),"""
LEXICAL_GIVEN = """lexical AS (
    SELECT given.id, given.rank, given.coverage
    FROM unnest(%(lexical_ids)s::bigint[], %(lexical_ranks)s::bigint[],
                %(lexical_coverage)s::float8[]) AS given(id, rank, coverage)
    JOIN kb_chunk c ON c.id = given.id
    WHERE (c.collection_id + 0) = ANY((SELECT ids FROM scope)::bigint[]){filters}
),"""
LEXICAL_LIST = """
SELECT s.total, s.dense_path, s.index_model, s.index_dimensions,
       l.id, l.rank, l.coverage
FROM scope s
LEFT JOIN lexical l ON true
ORDER BY l.rank
"""


# Settings local to the search, given as parallel arrays of names and values;
# and putting named ones back to the session's values.
SETTINGS_SET_SQL = (
    "SELECT set_config(name, value, true)"
    " FROM unnest($1::text[], $2::text[]) AS setting(name, value)"
)
SETTINGS_RESET_SQL = "SELECT set_config(name, reset_val, true) FROM pg_settings WHERE name = ANY($1::text[])"

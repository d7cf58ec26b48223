"""Permission-filtered vector search at a million chunks.

Loads N synthetic 384-dimensional chunks (clustered unit vectors of low
intrinsic dimension, as real embeddings are; see ``synthetic_vectors``) into
documents of 50 chunks in 200 collections, each chunk with a real passage of
up to CHUNK_MAX_CHARS characters (SciFact abstracts) and its full-text vector,
so that rows are as wide as real ones (the exact scan reads every permitted
row: with one word of text instead it took half the time). It builds the
production HNSW index (halfvec, m=16, ef_construction=64) and the full-text
index after the load and times them, then asks the real
search service (``kb.search.search_chunks``, dense half) as users permitted
about 0.1 %, 1 %, 10 % and 100 % of the chunks. The permitted sets are not
correlated with the vectors, the hard case for a filter applied after an
index scan. For each it prints recall@10 against exact search over the same
permitted chunks, rows returned, p50/p95 latency and the path taken, next to
an unfiltered HNSW query (plain SQL, pgvector defaults) timed query by query
with them, in a random order each time, and the same query at the product's
ef_search (the list the filtered searches use to reach recall 0.95). Every
table and index page is read once first, as in a server that has been
answering for a while. Each selectivity is also asked as a collection filter
by the user who may read everything: the filtered set is the search's scope,
so recall and a full page must hold as they do for permissions.

Then it times whole hybrid searches (the product's default: the lexical
half with SciFact's questions as text, fused with the dense half) at each
selectivity.

Each p95 ratio comes with a 95 % interval from a paired bootstrap over the
queries: this machine's p95s move by a fifth between runs, and a ratio
without its spread reads as more certain than it is.

Usage: .venv/bin/python bench/search_scale.py [--chunks 1000000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, bench_stack, percentile, percentile_rank, read_jsonl

COLLECTIONS = 200
DIMENSIONS = 384
CLUSTERS = 2000
LATENT = 48
K = 10
CHUNKS_PER_DOCUMENT = 50
# Fractions of all chunks each user may read; the collection sizes below are
# laid out so the permitted sets hit these fractions.
SELECTIVITIES = (0.001, 0.01, 0.1, 1.0)
WARM_UP_QUERIES = 300
# Distinct passages the chunks' texts cycle through.
PASSAGES = 10_000
BOOTSTRAP_ROUNDS = 1000
# Whole hybrid searches timed at each selectivity, after a few untimed.
HYBRID_QUERIES = 300
WARM_UP_HYBRID = 20


def collection_sizes(total: int) -> list[int]:
    """Ten small collections of 0.1 % each, then 18 of 0.5 % (so that the
    first 28 hold 10 %), then the rest shared by the remaining 172."""
    small = total // 1000
    middle = total // 200
    sizes = [small] * 10 + [middle] * 18
    rest = total - sum(sizes)
    count = COLLECTIONS - len(sizes)
    sizes += [rest // count + (1 if i < rest % count else 0) for i in range(count)]
    return sizes


def permitted_collections(selectivity: float) -> int:
    """How many of the first collections make up ``selectivity`` of the chunks."""
    return {0.001: 1, 0.01: 10, 0.1: 28, 1.0: COLLECTIONS}[selectivity]


def permitted_chunks(selectivity: float, sizes: list[int]) -> int:
    return sum(sizes[: permitted_collections(selectivity)])


def passages(limit: int, max_chars: int) -> list[str]:
    """Up to ``limit`` passages of SciFact abstracts, each at most
    ``max_chars`` long, cut between words (the chunker prefers sentence
    ends; for the bench only the rows' width matters)."""
    found: list[str] = []
    for document in read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl"):
        current: list[str] = []
        length = 0  # of " ".join(current)
        for word in f"{document['title']}. {document['text']}".split():
            if current and length + 1 + len(word) > max_chars:
                found.append(" ".join(current))
                current, length = [], 0
            length += len(word) + (1 if current else 0)
            current.append(word)
        if current:
            found.append(" ".join(current))
        if len(found) >= limit:
            return found[:limit]
    return found


@dataclass
class Series:
    """One kind of search timed over the queries: its latencies, recall
    against ``truths``, rows returned and the paths it took."""

    search: Callable[[np.ndarray], tuple[list[int], str]]
    truths: list[set[int]]
    latencies: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)

    def measure(self, number: int, query: np.ndarray) -> None:
        started = time.perf_counter()
        ids, path = self.search(query)
        self.latencies.append((time.perf_counter() - started) * 1000)
        self.recalls.append(len(set(ids) & self.truths[number]) / K)
        self.returned.append(len(ids))
        self.paths.add(path)


def p95_ratio_interval(
    searched: list[float], baseline: list[float], rng: np.random.Generator
) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of p95(searched) / p95(baseline) over
    bootstrap resamples of the queries. Paired: both lists are indexed by
    query, timed one after the other, so a resample keeps each query's two
    timings together."""
    searched_ms, baseline_ms = np.asarray(searched), np.asarray(baseline)
    picks = rng.integers(0, len(searched_ms), size=(BOOTSTRAP_ROUNDS, len(searched_ms)))
    # The p95 of each resample, ranked as ``percentile`` ranks the printed p95s.
    rank = percentile_rank(len(searched_ms), 0.95)
    ratios = (
        np.sort(searched_ms[picks], axis=1)[:, rank]
        / np.sort(baseline_ms[picks], axis=1)[:, rank]
    )
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def synthetic_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    """Topic clusters in a LATENT-dimensional space, mapped into 384
    dimensions with a little noise: sentence embeddings have a low intrinsic
    dimension (a few dozen), unlike isotropic random vectors, whose near-ties
    no index can rank (with noise spread over all 384 dimensions, pgvector's
    own unfiltered HNSW recall drops to about 0.68 at ef_search 40)."""
    centers = rng.normal(size=(CLUSTERS, LATENT)).astype(np.float32)
    projection = rng.normal(size=(LATENT, DIMENSIONS)).astype(np.float32)
    vectors = np.empty((count, DIMENSIONS), dtype=np.float32)
    step = 100_000
    for start in range(0, count, step):
        size = min(step, count - start)
        latent = centers[rng.integers(0, CLUSTERS, size=size)] + 0.5 * rng.normal(
            size=(size, LATENT)
        ).astype(np.float32)
        vectors[start : start + size] = latent @ projection + 0.5 * rng.normal(
            size=(size, DIMENSIONS)
        ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # What the database stores (halfvec), so exact search ranks the same values.
    return vectors.astype(np.float16).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ef",
        default="",
        help="comma-separated hnsw.ef_search values to compare on the HNSW path "
        "(default: the product's HNSW_EF_SEARCH)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    # Its own generator: the order of the searches does not shift the data.
    order_rng = np.random.default_rng(args.seed + 1)

    with bench_stack():
        from django.conf import settings
        from django.db import connection
        from pgvector import HalfVector
        from pgvector.psycopg import register_vector

        from accounts.models import User
        from kb.index import active_model_name
        from kb.models import Document, Role
        from kb.search import EXACT_SCAN_MAX_CHUNKS, SearchFilters, search_chunks
        from kb.services import collection_create, grant_set
        from kb.text import TEXT_SEARCH_CONFIG, segment

        owner, _ = User.objects.get_or_create(username="scale-owner")
        sizes = collection_sizes(args.chunks)
        collections = [
            collection_create(name=f"scale-{index:03d}", creator=owner)
            for index in range(COLLECTIONS)
        ]
        # Documents of CHUNKS_PER_DOCUMENT chunks, as real uploads come (a
        # collection of one huge document would hide any cost per document).
        documents_of = [
            Document.objects.bulk_create(
                [
                    Document(
                        collection=collection,
                        title=f"synthetic {collection.name} {number}",
                        original_filename="synthetic.txt",
                        sha256=f"{index:032d}{number:032d}",
                        status=Document.Status.READY,
                        chunk_count=min(CHUNKS_PER_DOCUMENT, size - start),
                    )
                    for number, start in enumerate(range(0, size, CHUNKS_PER_DOCUMENT))
                ]
            )
            for index, (collection, size) in enumerate(
                zip(collections, sizes, strict=True)
            )
        ]
        document_count = sum(len(made) for made in documents_of)
        users = {}
        for selectivity in SELECTIVITIES:
            user, _ = User.objects.get_or_create(username=f"scale-{selectivity}")
            for collection in collections[: permitted_collections(selectivity)]:
                grant_set(
                    collection=collection, user=user, role=Role.VIEWER, actor=owner
                )
            users[selectivity] = user

        print(f"# generating {args.chunks:,} clustered unit vectors", flush=True)
        vectors = synthetic_vectors(args.chunks, rng)
        owner_of_row = np.repeat(np.arange(COLLECTIONS), sizes)

        connection.ensure_connection()
        raw = connection.connection
        register_vector(raw)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunk_embedding_hnsw'"
            )
            index_sql = cursor.fetchone()[0]
            cursor.execute("DROP INDEX chunk_embedding_hnsw")
            # Built after the load too: faster than a row at a time.
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunk_search_vector'"
            )
            text_index_sql = cursor.fetchone()[0]
            cursor.execute("DROP INDEX chunk_search_vector")
            # Each passage's full-text vector as ingestion makes it
            # (ingest.pipeline.INSERT_CHUNKS_SQL), computed once per passage.
            texts = passages(PASSAGES, settings.CHUNK_MAX_CHARS)
            cursor.execute(
                f"SELECT to_tsvector('{TEXT_SEARCH_CONFIG}', segmented)::text"  # noqa: S608
                " FROM unnest(%s::text[]) WITH ORDINALITY AS p(segmented, number)"
                " ORDER BY number",
                [[segment(text) for text in texts]],
            )
            text_vectors = [row[0] for row in cursor.fetchall()]
        print(
            f"# {len(texts):,} passages of up to {settings.CHUNK_MAX_CHARS:,} characters "
            f"(mean {statistics.mean(len(text) for text in texts):.0f})",
            flush=True,
        )
        # Search compares a query only with chunks of the index's model.
        model_name = active_model_name()
        started = time.perf_counter()
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY kb_chunk (document_id, collection_id, ordinal, text, section_title, "
                "element_types, embedding, embedding_model, search_vector) FROM STDIN"
            ) as copy,
        ):
            row = 0
            for collection, size, made in zip(
                collections, sizes, documents_of, strict=True
            ):
                for ordinal in range(size):
                    passage = row % len(texts)
                    copy.write_row(
                        (
                            made[ordinal // CHUNKS_PER_DOCUMENT].pk,
                            collection.pk,
                            ordinal % CHUNKS_PER_DOCUMENT,
                            texts[passage],
                            "",
                            "NarrativeText",
                            HalfVector(vectors[row]),
                            model_name,
                            text_vectors[passage],
                        )
                    )
                    row += 1
        raw.commit()
        load_seconds = time.perf_counter() - started
        print(
            f"loaded {args.chunks:,} chunks ({document_count:,} documents) "
            f"in {load_seconds:.0f}s",
            flush=True,
        )

        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '4GB'")
            cursor.execute("SET max_parallel_maintenance_workers = 2")
            started = time.perf_counter()
            cursor.execute(index_sql)
            build_seconds = time.perf_counter() - started
            started = time.perf_counter()
            cursor.execute(text_index_sql)
            text_build_seconds = time.perf_counter() - started
            cursor.execute(
                "SELECT pg_relation_size('chunk_embedding_hnsw'),"
                " pg_relation_size('chunk_search_vector'),"
                " pg_relation_size('chunk_collection_vector'), pg_table_size('kb_chunk')"
            )
            index_bytes, text_index_bytes, collection_index_bytes, table_bytes = (
                cursor.fetchone()
            )
        raw.commit()
        print(
            f"hnsw index (halfvec): built in {build_seconds:.0f}s, "
            f"{index_bytes / 2**20:.0f} MiB (a vector(384) index holds twice the bytes "
            f"per element); full-text index built in {text_build_seconds:.0f}s, "
            f"{text_index_bytes / 2**20:.0f} MiB; collection index (with the vectors, "
            f"for the exact scan) {collection_index_bytes / 2**20:.0f} MiB; "
            f"table {table_bytes / 2**20:.0f} MiB with its TOAST",
            flush=True,
        )
        # What autovacuum does minutes after a bulk load, done now: otherwise
        # it runs during the timed searches (the index build blocked it), and
        # the first read of each row sets its hint bits and, with data
        # checksums, writes the page to the WAL, which a live installation
        # stopped paying long ago.
        started = time.perf_counter()
        autocommit, raw.autocommit = raw.autocommit, True  # VACUUM needs it
        with raw.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) kb_chunk")
        raw.autocommit = autocommit
        print(f"vacuumed in {time.perf_counter() - started:.0f}s", flush=True)

        # Every table and index page read once, as in a server that has
        # been answering for a while (the launcher sizes shared_buffers to a
        # quarter of memory, which holds them); query warm-up alone leaves
        # much of a 2 GB index and table still to be read.
        started = time.perf_counter()
        with raw.transaction(), raw.cursor() as cursor:
            cursor.execute("SHOW shared_buffers")
            shared_buffers = cursor.fetchone()[0]
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("SELECT count(embedding) FROM kb_chunk")
            # The collection index, which the exact scan reads (an index-only
            # scan needs index scans on).
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = on")
            cursor.execute("SET LOCAL enable_indexonlyscan = on")
            cursor.execute(
                "SELECT count(embedding) FROM kb_chunk WHERE collection_id > 0"
                " AND embedding_model <> ''"
            )
            # An iterative HNSW scan with a filter no row passes walks the
            # whole graph.
            cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cursor.execute("SET LOCAL hnsw.max_scan_tuples = 100000000")
            cursor.execute("SET LOCAL hnsw.scan_mem_multiplier = 1000")
            cursor.execute("SET LOCAL work_mem = '1GB'")
            cursor.execute(
                "SELECT count(*) FROM (SELECT id FROM kb_chunk WHERE collection_id + 0 < 0"
                " ORDER BY embedding <=> %s::halfvec LIMIT 10) none",
                [HalfVector(vectors[0])],
            )
        print(
            f"read every page once in {time.perf_counter() - started:.0f}s "
            f"(shared_buffers {shared_buffers})",
            flush=True,
        )

        def near_the_data(count: int) -> np.ndarray:
            """Queries near the data: stored vectors moved a little."""
            picks = rng.integers(0, args.chunks, size=count)
            moved = vectors[picks] + 0.3 * rng.normal(size=(count, DIMENSIONS)).astype(
                np.float32
            ) / np.sqrt(DIMENSIONS)
            # float32 as the vectors: a float64 query made every exact
            # product copy the million vectors to float64 first.
            return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(
                np.float32
            )

        queries = near_the_data(args.queries)
        warm_up_queries = near_the_data(WARM_UP_QUERIES)
        chunk_ids = np.empty(args.chunks, dtype=np.int64)
        with connection.cursor() as cursor:
            # COPY wrote the rows in order, so ids follow the vectors.
            cursor.execute("SELECT id FROM kb_chunk ORDER BY id")
            chunk_ids[:] = [row[0] for row in cursor.fetchall()]

        def exact_top(selectivity: float) -> list[set[int]]:
            allowed = np.flatnonzero(owner_of_row < permitted_collections(selectivity))
            subset = vectors[allowed]
            truth = []
            for start in range(0, len(queries), 50):
                scores = queries[start : start + 50] @ subset.T
                top = np.argpartition(-scores, K, axis=1)[:, :K]
                truth += [set(chunk_ids[allowed[row]]) for row in top]
            return truth

        print(f"# exact scan below {EXACT_SCAN_MAX_CHUNKS:,} permitted chunks")

        from kb.search import tuning as search_module

        ef_values = [int(v) for v in args.ef.split(",") if v.strip()] or [
            search_module.HNSW_EF_SEARCH
        ]
        truths_by_selectivity = {s: exact_top(s) for s in SELECTIVITIES}
        truth_all = truths_by_selectivity[1.0]

        def unfiltered(query: np.ndarray, ef_search: int | None = None) -> list[int]:
            """Plain SQL with pgvector's defaults (the floor), or with the
            product's search list (the same recall target as the filtered
            searches), set in the same round trip."""
            with raw.cursor() as cursor:
                with raw.pipeline():
                    if ef_search:
                        cursor.execute(
                            "SELECT set_config('hnsw.ef_search', %s, true)",
                            [str(ef_search)],
                        )
                    cursor.execute(
                        "SELECT id FROM kb_chunk ORDER BY embedding <=> %s::halfvec LIMIT %s",
                        [HalfVector(query), K],
                    )
                ids = [row[0] for row in cursor.fetchall()]
            raw.commit()
            return ids

        def filtered(selectivity: float, query: np.ndarray) -> tuple[list[int], str]:
            result = search_chunks(
                user=users[selectivity],
                query="synthetic",
                mode="dense",
                limit=K,
                query_vector=query,
            )
            return [hit.chunk_id for hit in result.hits], result.path

        def by_filter(selectivity: float, query: np.ndarray) -> tuple[list[int], str]:
            """The user who may read everything, filtered to the collections
            the user permitted ``selectivity`` may read: the same chunks."""
            first = collections[: permitted_collections(selectivity)]
            result = search_chunks(
                user=users[1.0],
                query="synthetic",
                mode="dense",
                limit=K,
                query_vector=query,
                filters=SearchFilters(collection_ids=tuple(c.pk for c in first)),
            )
            return [hit.chunk_id for hit in result.hits], result.path

        # Warm the caches first (index and table pages) with other queries
        # through every path: the filtered scans read heap pages the
        # unfiltered one never does, and the first to read them from disk
        # would pay for all the others.
        for query in warm_up_queries:
            unfiltered(query)
            for selectivity in SELECTIVITIES:
                filtered(selectivity, query)
                by_filter(selectivity, query)

        for pass_number, ef in enumerate(ef_values):
            search_module.HNSW_EF_SEARCH = ef
            # The exact path does not depend on ef_search: measured once.
            measured = [
                s
                for s in SELECTIVITIES
                if not pass_number or permitted_chunks(s, sizes) > EXACT_SCAN_MAX_CHUNKS
            ]
            baseline = Series(lambda q: (unfiltered(q), "hnsw"), truth_all)
            same_list = Series(
                lambda q: (unfiltered(q, search_module.HNSW_EF_SEARCH), "hnsw"),
                truth_all,
            )
            # Each selectivity as permissions, then as a collection filter
            # by a user who may read everything (recall and rows must hold).
            labelled = [
                (
                    "permitted",
                    s,
                    Series(functools.partial(filtered, s), truths_by_selectivity[s]),
                )
                for s in measured
            ] + [
                (
                    "filtered to",
                    s,
                    Series(functools.partial(by_filter, s), truths_by_selectivity[s]),
                )
                for s in measured
                if s < 1.0
            ]
            series = [baseline, same_list] + [one for _kind, _s, one in labelled]
            # Query by query, the unfiltered baseline and every selectivity
            # take turns, in a new random order each time: this machine's
            # speed drifts within minutes, and a baseline timed minutes apart
            # from the filtered searches compared drift, not search. Random,
            # not rotating: in a rotation each search nearly always follows
            # the same other one, and the one after the 1 % exact scan (which
            # reads 10,000 rows and evicts the CPU caches) paid for it every
            # time (10 %: p95 1.84 x rotating, 1.69 x random, one database).
            for number, query in enumerate(queries):
                for turn in order_rng.permutation(len(series)):
                    series[turn].measure(number, query)
            unfiltered_p95 = percentile(baseline.latencies, 0.95)
            print(
                f"ef_search={ef} unfiltered hnsw (pgvector defaults): "
                f"recall@10={statistics.mean(baseline.recalls):.3f} "
                f"p50={percentile(baseline.latencies, 0.5):.1f}ms "
                f"p95={unfiltered_p95:.1f}ms"
            )
            same_list_p95 = percentile(same_list.latencies, 0.95)
            print(
                f"ef_search={ef} unfiltered hnsw (ef_search {ef}, as the filtered "
                f"searches): recall@10={statistics.mean(same_list.recalls):.3f} "
                f"p50={percentile(same_list.latencies, 0.5):.1f}ms "
                f"p95={same_list_p95:.1f}ms"
            )
            for kind, selectivity, one in labelled:
                permitted = permitted_collections(selectivity)
                p95 = percentile(one.latencies, 0.95)
                low, high = p95_ratio_interval(one.latencies, baseline.latencies, rng)
                same_low, same_high = p95_ratio_interval(
                    one.latencies, same_list.latencies, rng
                )
                print(
                    f"ef_search={ef} {kind} {selectivity:.1%} ({permitted} collections, "
                    f"{permitted_chunks(selectivity, sizes):,} chunks) "
                    f"path={'/'.join(sorted(one.paths))} "
                    f"recall@10={statistics.mean(one.recalls):.3f} "
                    f"min rows={min(one.returned)} "
                    f"p50={percentile(one.latencies, 0.5):.1f}ms "
                    f"p95={p95:.1f}ms ({p95 / unfiltered_p95:.2f}x unfiltered p95, "
                    f"95% interval {low:.2f}-{high:.2f}; {p95 / same_list_p95:.2f}x at "
                    f"ef_search {ef}, {same_low:.2f}-{same_high:.2f})",
                    flush=True,
                )

        # The product's default search, hybrid, whole: SciFact's questions
        # (the passages' own collection) as text, the synthetic query vectors
        # as their dense half, every selectivity in a random order per
        # question. No exact answer to compare with: latency and rows only.
        questions = [
            row["text"]
            for row in read_jsonl(DATA / "beir" / "scifact" / "queries.jsonl")
        ]
        hybrid_ms: dict[float, list[float]] = {s: [] for s in SELECTIVITIES}
        hybrid_rows: dict[float, list[int]] = {s: [] for s in SELECTIVITIES}
        for number in range(WARM_UP_HYBRID + HYBRID_QUERIES):
            question = questions[number % len(questions)]
            for turn in order_rng.permutation(len(SELECTIVITIES)):
                selectivity = SELECTIVITIES[turn]
                started = time.perf_counter()
                result = search_chunks(
                    user=users[selectivity],
                    query=question,
                    limit=K,
                    query_vector=queries[number % len(queries)],
                )
                if number >= WARM_UP_HYBRID:
                    hybrid_ms[selectivity].append(
                        (time.perf_counter() - started) * 1000
                    )
                    hybrid_rows[selectivity].append(len(result.hits))
        for selectivity in SELECTIVITIES:
            print(
                f"hybrid permitted {selectivity:.1%}: "
                f"{len(hybrid_ms[selectivity])} questions, "
                f"min rows={min(hybrid_rows[selectivity])} "
                f"p50={percentile(hybrid_ms[selectivity], 0.5):.1f}ms "
                f"p95={percentile(hybrid_ms[selectivity], 0.95):.1f}ms "
                f"max={max(hybrid_ms[selectivity]):.1f}ms",
                flush=True,
            )


if __name__ == "__main__":
    main()

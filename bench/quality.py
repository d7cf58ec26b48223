"""Retrieval quality of dense-only, lexical-only and hybrid search.

Each corpus is ingested through the real pipeline into a fresh embedded
database and queried through ``kb.search.search_chunks``, the service the
portal and the API use. Prints one line per dataset and method:

    scifact hybrid ndcg@10=0.7012 recall@100=0.93

Published nDCG@10 on SciFact: all-MiniLM-L6-v2 0.645, BM25 0.687.
Usage: .venv/bin/python bench/quality.py [--datasets scifact cmrc2018-zh] [--max-queries N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    DATA,
    bench_stack,
    bench_user_and_collection,
    ingest_texts,
    read_jsonl,
    read_qrels,
)


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(
        relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10])
    )
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(grade / math.log2(i + 2) for i, grade in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_100(ranked: list[str], relevant: dict[str, int]) -> float:
    hits = sum(1 for doc in ranked[:100] if doc in relevant)
    return hits / len(relevant) if relevant else 0.0


def run_dataset(name: str, max_queries: int | None) -> None:
    from kb.embedding import get_embedder
    from kb.search import search_chunks

    root = DATA / "beir" / name
    corpus = read_jsonl(root / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(root / "queries.jsonl")}
    qrels = read_qrels(root / "qrels" / "test.tsv")
    query_ids = [qid for qid in queries if qid in qrels]
    if max_queries:
        query_ids = query_ids[:max_queries]
    user, collection = bench_user_and_collection(f"bench-{name}")
    docs = [
        (
            d["_id"],
            "\n\n".join(part for part in (d.get("title", ""), d["text"]) if part),
        )
        for d in corpus
    ]
    started = time.perf_counter()
    mapping = ingest_texts(collection, user, docs)
    print(
        f"# {name}: ingested {len(mapping)} documents in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    embedder = get_embedder()
    vectors = embedder.encode([queries[qid] for qid in query_ids])
    for mode in ("dense", "lexical", "hybrid"):
        ndcgs, recalls, started = [], [], time.perf_counter()
        for qid, vector in zip(query_ids, vectors, strict=True):
            result = search_chunks(
                user=user, query=queries[qid], limit=100, mode=mode, query_vector=vector
            )
            ranked: list[str] = []
            for hit in result.hits:
                doc = mapping.get(hit.document_id)
                if doc is not None and doc not in ranked:
                    ranked.append(doc)
            ndcgs.append(ndcg_at_10(ranked, qrels[qid]))
            recalls.append(recall_at_100(ranked, qrels[qid]))
        elapsed = (time.perf_counter() - started) / len(query_ids) * 1000
        print(
            f"{name} {mode} ndcg@10={sum(ndcgs) / len(ndcgs):.4f} "
            f"recall@100={sum(recalls) / len(recalls):.4f}  ({len(query_ids)} queries, {elapsed:.1f} ms/query)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", default=["scifact", "cmrc2018-zh"])
    parser.add_argument("--max-queries", type=int, default=None)
    args = parser.parse_args()
    with bench_stack():
        for name in args.datasets:
            run_dataset(name, args.max_queries)


if __name__ == "__main__":
    main()

"""Retrieval quality of dense-only, lexical-only and hybrid search, for each
embedding model, on every shared set; with each model's ingestion rate and
index size on this machine.

Each corpus is ingested through the real pipeline into a fresh embedded
database and queried through ``kb.search.search_chunks``, the service the
portal and the API use. Each model runs in a process of its own (the model
is a setting read at start-up). Prints one table:

    | set | model | dense | lexical | hybrid | hybrid - best half |

then, per model, chunks/s of the pipeline and of the model alone on the same
kind of chunks (their ratio), per core, and the index's size per 1,000 chunks.
The pipeline is what a worker does with queued files (parse, chunk, embed,
write and index), timed as in ``bench/ingest.py``; storing, type-checking and
queueing each file is the upload request's work, timed before it and shown
beside it, with the rate of the two together.

Usage:
    .venv/bin/python bench/quality.py [--models minilm gemma] [--datasets ...]
        [--max-queries N] [--dump DIR]
``--dump`` keeps each query's dense and lexical lists (for studying fusion).
Published nDCG@10 on SciFact: all-MiniLM-L6-v2 0.645, BM25 0.687.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    DATA,
    bench_stack,
    bench_user_and_collection,
    drain_queue,
    read_jsonl,
    read_qrels,
    upload_texts,
    warm_worker,
)

DATASETS = [
    "scifact",
    "cmrc2018-zh",
    "covidqa-en",
    "xquad-en",
    "xquad-zh",
    "xquad-zh2en",
    "xquad-en2zh",
]
MODELS = {
    "minilm": "",
    "gemma": "google/embeddinggemma-300m",
}
MODES = ("dense", "lexical", "hybrid")
# Chunks embedded by the model alone, outside the pipeline, for the ratio.
RAW_SAMPLE_CHUNKS = 256


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(
        relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10])
    )
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(grade / math.log2(i + 2) for i, grade in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def _corpus_key(name: str) -> str:
    """Sets sharing a corpus (xquad-zh and xquad-en2zh) ingest it once."""
    return hashlib.sha256(
        (DATA / "beir" / name / "corpus.jsonl").read_bytes()
    ).hexdigest()


def _index_bytes() -> int:
    """The vectors (in the chunk rows) and the two indexes that hold them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_column_size(embedding)), 0)"
            " + pg_relation_size('chunk_embedding_hnsw')"
            " + pg_relation_size('chunk_collection_vector') FROM kb_chunk"
        )
        return int(cursor.fetchone()[0])


def _raw_rate(texts: list[str]) -> float:
    """Chunks per second of the model alone on ``texts``."""
    from kb.embedding import embedder_for

    embedder = embedder_for()
    embedder.encode(texts[:8])  # warm
    started = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - started)


def run_model(
    datasets: list[str], max_queries: int | None, dump: Path | None
) -> dict[str, Any]:
    """In this process: every dataset with the configured model."""
    from kb.models import Chunk
    from kb.search import search_chunks

    report: dict[str, Any] = {
        "sets": {},
        "upload_seconds": 0.0,
        "ingest_seconds": 0.0,
        "chunks": 0,
        "files": 0,
    }
    # Timed as a worker that has ingested before (bench/ingest.py does the same).
    warm_worker("Warm-up.\n\nA passage that starts the parser and loads the model.")
    ingested: dict[str, tuple[Any, Any, dict[int, str]]] = {}
    for name in datasets:
        root = DATA / "beir" / name
        queries = {q["_id"]: q["text"] for q in read_jsonl(root / "queries.jsonl")}
        qrels = read_qrels(root / "qrels" / "test.tsv")
        query_ids = [qid for qid in queries if qid in qrels][:max_queries]
        key = _corpus_key(name)
        if key not in ingested:
            corpus = read_jsonl(root / "corpus.jsonl")
            # A user of its own: each set is searched alone.
            user, collection = bench_user_and_collection(
                f"bench-{name}", username=f"bench-{name}"
            )
            docs = [
                (d["_id"], "\n\n".join(p for p in (d.get("title", ""), d["text"]) if p))
                for d in corpus
            ]
            started = time.perf_counter()
            mapping = upload_texts(collection, user, docs)
            upload_seconds = time.perf_counter() - started
            started = time.perf_counter()
            drain_queue(mapping)
            seconds = time.perf_counter() - started
            chunks = Chunk.objects.filter(collection=collection).count()
            report["upload_seconds"] += upload_seconds
            report["ingest_seconds"] += seconds
            report["chunks"] += chunks
            report["files"] += len(mapping)
            print(
                f"# {name}: {chunks} chunks in {seconds:.0f} s"
                f" (uploading its {len(mapping)} files before: {upload_seconds:.0f} s)",
                flush=True,
            )
            ingested[key] = (user, collection, mapping)
        user, collection, mapping = ingested[key]
        scores: dict[str, list[float]] = {mode: [] for mode in MODES}
        lists: list[dict[str, Any]] = []
        for qid in query_ids:
            row: dict[str, Any] = {"id": qid, "relevant": qrels[qid]}
            for mode in MODES:
                result = search_chunks(
                    user=user, query=queries[qid], limit=100, mode=mode
                )
                ranked: list[str] = []
                details: list[list[Any]] = []
                for hit in result.hits:
                    doc = mapping.get(hit.document_id)
                    if doc is not None and doc not in ranked:
                        ranked.append(doc)
                        details.append([doc, hit.similarity, hit.lexical_coverage])
                scores[mode].append(ndcg_at_10(ranked, qrels[qid]))
                row[mode] = details
            lists.append(row)
        report["sets"][name] = {
            mode: sum(values) / len(values) for mode, values in scores.items()
        }
        print(f"# {name}: {report['sets'][name]}", flush=True)
        if dump is not None:
            (dump / f"{name}.json").write_text(json.dumps(lists))
    report["index_bytes_per_1000"] = _index_bytes() / max(1, report["chunks"]) * 1000
    report["pipeline_rate"] = report["chunks"] / max(report["ingest_seconds"], 1e-9)
    # The model alone on chunks drawn from everything ingested, so both
    # rates are of the same kind of text.
    sample = list(
        Chunk.objects.order_by("?").values_list("text", flat=True)[:RAW_SAMPLE_CHUNKS]
    )
    report["raw_rate"] = _raw_rate(sample) if sample else 0.0
    return report


def _print_table(reports: dict[str, dict[str, Any]], datasets: list[str]) -> None:
    print("\n| set | model | dense | lexical | hybrid | hybrid - best half |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in datasets:
        for model, report in reports.items():
            row = report["sets"].get(name)
            if row is None:
                continue
            margin = row["hybrid"] - max(row["dense"], row["lexical"])
            print(
                f"| {name} | {model} | {row['dense']:.4f} | {row['lexical']:.4f} | "
                f"{row['hybrid']:.4f} | {margin:+.4f} |"
            )
    cores = os.cpu_count() or 1
    print(
        f"\n| model | pipeline chunks/s | per core ({cores} cores) | model alone "
        "chunks/s | pipeline / model | upload ms a file | with the uploads "
        "chunks/s | index KiB per 1,000 chunks |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, report in reports.items():
        ratio = report["pipeline_rate"] / max(report["raw_rate"], 1e-9)
        upload_ms = report["upload_seconds"] / max(report["files"], 1) * 1000
        overall = report["chunks"] / max(
            report["ingest_seconds"] + report["upload_seconds"], 1e-9
        )
        print(
            f"| {model} | {report['pipeline_rate']:.1f} | "
            f"{report['pipeline_rate'] / cores:.2f} | {report['raw_rate']:.1f} | "
            f"{ratio:.2f} | {upload_ms:.1f} | {overall:.1f} | "
            f"{report['index_bytes_per_1000'] / 1024:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--dump", type=Path, default=None)
    parser.add_argument("--one-model", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_model is not None:
        os.environ["EMBEDDING_MODEL"] = MODELS[args.one_model]
        dump = args.dump / args.one_model if args.dump else None
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
        with bench_stack():
            report = run_model(args.datasets, args.max_queries, dump)
        args.report.write_text(json.dumps(report))
        return
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            out = Path(scratch) / f"{model}.json"
            command = [
                sys.executable, __file__, "--one-model", model, "--report", str(out),
                "--datasets", *args.datasets,
            ]  # fmt: skip
            if args.max_queries:
                command += ["--max-queries", str(args.max_queries)]
            if args.dump:
                command += ["--dump", str(args.dump)]
            print(f"## {model}", flush=True)
            subprocess.run(command, check=True)
            reports[model] = json.loads(out.read_text())
    _print_table(reports, args.datasets)


if __name__ == "__main__":
    main()

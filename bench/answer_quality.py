"""Answer quality on the shared QA sets, through ``manage.py evaluate``,
for the default LLM beside SmolLM2-135M as the baseline, in one run.

For each set (default: xquad-en, xquad-zh, cmrc2018-zh) its corpus is
ingested into a collection of its own through the real pipeline, and a
question set is written from it: the first N questions with their gold
answers and documents, plus M questions of other sets asked of this
collection (off-topic: they must be declined). Then each model answers every
set through ``manage.py evaluate`` (the real ask path, as a reader of the
collections), and the figures are printed side by side.

Usage:
  .venv/bin/python bench/answer_quality.py [--questions 300] [--off-topic 100]
      [--sets xquad-en xquad-zh cmrc2018-zh] [--models default smollm2]
      [--overhead-sample 30]
  .venv/bin/python bench/answer_quality.py --write-sets DIR [--questions 300]
      (only write the question sets, for ``manage.py evaluate``)
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, bench_stack, read_jsonl, read_qrels
from inference.evaluation.metrics import LATENCY_METRICS, QUALITY_METRICS

# Each set's off-topic questions come from sets about other things: one in
# the other language and, where there is one, one in the same language (the
# harder case: the words of a same-language question overlap more).
OFF_TOPIC_FROM = {
    "xquad-en": ("cmrc2018-zh", "covidqa-en"),
    "xquad-zh": ("covidqa-en", "cmrc2018-zh"),
    "cmrc2018-zh": ("xquad-en", "xquad-zh"),
    "covidqa-en": ("cmrc2018-zh", "xquad-en"),
    "xquad-zh2en": ("cmrc2018-zh",),
    "xquad-en2zh": ("covidqa-en",),
}
FIGURES = (
    *QUALITY_METRICS,
    *LATENCY_METRICS,
    "llm_first_token_p50_ms",
    "platform_added_first_token_ms",
    "platform_overhead",
)


def question_rows(name: str, count: int, offset: int = 0) -> list[dict[str, Any]]:
    """The set's questions that have gold answers, with their documents."""
    qrels = read_qrels(DATA / "beir" / name / "qrels" / "test.tsv")
    rows = []
    for query in read_jsonl(DATA / "beir" / name / "queries.jsonl"):
        answers = (query.get("metadata") or {}).get("answers") or []
        if not answers or query["_id"] not in qrels:
            continue
        rows.append(
            {
                "question": query["text"],
                "answers": answers,
                "documents": sorted(qrels[query["_id"]]),
                "answerable": True,
            }
        )
    return rows[offset : offset + count]


def question_set(name: str, count: int, off_topic: int) -> list[dict[str, Any]]:
    rows = question_rows(name, count)
    # Off-topic questions from past the first 300 of the other sets, so a
    # question never doubles as another set's answerable one; the count is
    # shared between them.
    sources = OFF_TOPIC_FROM[name]
    for index, source in enumerate(sources):
        share = off_topic // len(sources) + (index < off_topic % len(sources))
        for row in question_rows(source, share, offset=300):
            rows.append({"question": row["question"], "answerable": False})
    return rows


def write_sets(directory: Path, sets: list[str], count: int, off_topic: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in sets:
        path = directory / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in question_set(name, count, off_topic):
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"wrote {path}")


def ingest_corpus(name: str, user: Any) -> Any:
    from bench.common import ingest_texts
    from kb.services import collection_create

    collection = collection_create(name=f"bench-{name}", creator=user)
    corpus_name = name.replace("zh2en", "en").replace("en2zh", "zh")
    docs = [
        (doc["_id"], (f"{doc['title']}\n\n" if doc.get("title") else "") + doc["text"])
        for doc in read_jsonl(DATA / "beir" / corpus_name / "corpus.jsonl")
    ]
    started = time.perf_counter()
    ingest_texts(collection, user, docs)
    print(
        f"  {name}: {len(docs)} documents ingested in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return collection


def evaluate(
    set_path: Path,
    collection: Any,
    name: str,
    overhead_sample: int,
    show_misses: int = 0,
) -> dict[str, Any]:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "evaluate",
        str(set_path),
        user="bench",
        collection=[str(collection.pk)],
        name=name,
        overhead_sample=overhead_sample,
        show_misses=show_misses,
        json=True,
        stdout=out,
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


def start_model(services: Any, model: str) -> None:
    """Point the settings at a fresh llama.cpp server for ``model``."""
    from django.conf import settings

    from config.launcher import smollm2_gguf
    from core import model_files

    for process in list(services.processes):
        if process.name == "llm":
            process.stop()
            services.processes.remove(process)
    if model == "smollm2":
        gguf, alias = smollm2_gguf(), "smollm2-135m-instruct"
    else:
        gguf = model_files.assemble(model_files.QWEN_CODER_1_5B, progress=print)
        alias = "qwen2.5-coder-1.5b-instruct"
    url = services.start_llm(gguf=gguf, alias=alias, wait=True)
    settings.LLM_BASE_URL = url
    settings.LLM_MODEL = alias


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sets", nargs="+", default=["xquad-en", "xquad-zh", "cmrc2018-zh"]
    )
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--off-topic", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["default", "smollm2"])
    parser.add_argument("--overhead-sample", type=int, default=30)
    parser.add_argument("--show-misses", type=int, default=0)
    parser.add_argument("--write-sets", type=Path)
    args = parser.parse_args()
    if args.write_sets:
        write_sets(args.write_sets, args.sets, args.questions, args.off_topic)
        return
    with bench_stack() as services:
        from django.core.cache import cache

        from accounts.models import User

        user, _ = User.objects.get_or_create(username="bench")
        set_dir = Path(services.var_dir) / "sets"
        write_sets(set_dir, args.sets, args.questions, args.off_topic)
        collections = {name: ingest_corpus(name, user) for name in args.sets}
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for model in args.models:
            start_model(services, model)
            cache.clear()  # the measured LLM speed belongs to the last model
            for name in args.sets:
                report = evaluate(
                    set_dir / f"{name}.jsonl",
                    collections[name],
                    f"{name} {model}",
                    args.overhead_sample,
                    args.show_misses,
                )
                results[(model, name)] = report
                print(
                    f"  {model} {name}: run {report['run']} "
                    + json.dumps(report["metrics"], ensure_ascii=False),
                    flush=True,
                )
        print_table(results, args.models, args.sets)


def print_table(
    results: dict[tuple[str, str], dict[str, Any]], models: list[str], sets: list[str]
) -> None:
    columns = [(model, name) for name in sets for model in models]
    print("\n| figure | " + " | ".join(f"{n} ({m})" for m, n in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for figure in FIGURES:
        cells = []
        for column in columns:
            value = results[column]["metrics"].get(figure)
            if value is None:
                cells.append("-")
            elif figure.endswith("_ms"):
                cells.append(f"{value / 1000:.2f} s")
            else:
                cells.append(f"{value:.3f}")
        print(f"| {figure} | " + " | ".join(cells) + " |")
    first = results[columns[0]]
    print("\nconfiguration: " + json.dumps(first["configuration"], ensure_ascii=False))


if __name__ == "__main__":
    main()

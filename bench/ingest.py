"""Ingestion throughput against the raw speed of the embedding model.

Writes SciFact abstracts out as text files and a set of text PDFs made from
them, ingests them through the real pipeline (type check, parser process,
chunking, embedding, bulk index writes), and in the same run measures:

- the raw ``encode()`` throughput of the chosen backend on the same chunk texts,
  measured just before and just after the pipeline (this machine's speed
  drifts by 10 % within minutes; the ratio uses the mean of the two),
- the default torch fp32 throughput on the same texts,
- the neighbour-overlap quality gate (bf16 vs fp32 top-10 neighbours),
- PDF pages parsed per second next to pages embedded per second,
- peak memory of this process (which plays the worker).

Usage: .venv/bin/python bench/ingest.py [--docs 1000] [--pdfs 40]
"""

from __future__ import annotations

import argparse
import os
import resource
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
    upload_texts,
    warm_worker,
)


def make_pdfs(
    texts: list[str], folder: Path, count: int, pages_per_pdf: int
) -> list[Path]:
    """Text PDFs (a real text layer) with one abstract per page, drawn with pdfium."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    paths = []
    for index in range(count):
        pdf = pdfium.PdfDocument.new()
        font = raw.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
        for page_no in range(pages_per_pdf):
            text = texts[(index * pages_per_pdf + page_no) % len(texts)]
            page = pdf.new_page(612, 792)
            lines, line = [], ""
            for word in text.split():
                if len(line) + len(word) > 90:
                    lines.append(line)
                    line = ""
                line = f"{line} {word}".strip()
            lines.append(line)
            for row, content in enumerate(lines[:60]):
                obj = raw.FPDFPageObj_CreateTextObj(pdf.raw, font, 10.0)
                encoded = (content + "\x00").encode("utf-16-le")
                buffer = (raw.FPDF_WCHAR * (len(encoded) // 2)).from_buffer_copy(
                    encoded
                )
                raw.FPDFText_SetText(obj, buffer)
                raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 40, 750 - row * 12)
                raw.FPDFPage_InsertObject(page.raw, obj)
            raw.FPDFPage_GenerateContent(page.raw)
        path = folder / f"scifact-{index}.pdf"
        pdf.save(str(path))
        paths.append(path)
    return paths


def stage_seconds() -> dict[str, float]:
    """Seconds spent so far in each stage of ingestion, from its metrics."""
    from prometheus_client import REGISTRY

    return {
        stage: REGISTRY.get_sample_value(
            "archivist_ingest_stage_duration_seconds_sum", {"stage": stage}
        )
        or 0.0
        for stage in ("parse", "embed", "write")
    }


def timed_encode(embedder: Any, texts: list[str]) -> tuple[float, Any]:
    """Chunks per second of one encode() of ``texts``, and the vectors."""
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--docs", type=int, default=1000, help="SciFact abstracts written as .txt files"
    )
    parser.add_argument(
        "--pdfs", type=int, default=20, help="text PDFs of 10 pages each"
    )
    args = parser.parse_args()

    corpus = read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl")
    texts = [f"{d.get('title', '')}\n\n{d['text']}" for d in corpus]
    with bench_stack(), tempfile.TemporaryDirectory() as folder:
        from ingest.filetypes import detect
        from ingest.parsing import parse_file
        from kb.embedding import (
            BUNDLED_MODEL_NAME,
            LocalEmbedder,
            _neighbour_overlap,
            embedder_for,
        )
        from kb.models import Chunk, Document

        user, collection = bench_user_and_collection("bench-ingest")
        embedder = embedder_for()
        print(
            f"# embedding backend: {embedder.backend} ({embedder.model_name})",
            flush=True,
        )

        # A worker that has already ingested a file: parser process started,
        # model loaded (a worker does this once, at its first task).
        warm_worker(texts[-1])

        # The chunks the pipeline will make (the same parser and chunker), for
        # the raw encode() measured right before it.
        from django.conf import settings

        from ingest.chunking import chunk_elements

        expected_texts: list[str] = []
        for index, text in enumerate(texts[: args.docs]):
            path = Path(folder) / f"doc-{index}.txt"
            path.write_text(text, encoding="utf-8")
            elements = parse_file(path, detect(path, path.name)).elements
            expected_texts.extend(
                draft.text
                for draft in chunk_elements(
                    elements, max_chars=settings.CHUNK_MAX_CHARS
                )
            )
        embedder.encode(expected_texts[:64])
        raw_before, _ = timed_encode(embedder, expected_texts)

        # The pipeline on text files, as after a bulk upload: every file is
        # stored and queued first, then the worker drains the queue (calling
        # the task's service in this process).
        started = time.perf_counter()
        queued = list(
            upload_texts(
                collection,
                user,
                [
                    (f"doc-{index}", text)
                    for index, text in enumerate(texts[: args.docs])
                ],
            )
        )
        upload_seconds = time.perf_counter() - started
        stages_before = stage_seconds()
        started = time.perf_counter()
        drain_queue(queued)
        pipeline_seconds = time.perf_counter() - started
        stages = {
            stage: seconds - stages_before[stage]
            for stage, seconds in stage_seconds().items()
        }
        chunk_texts = list(
            Chunk.objects.filter(collection=collection).values_list("text", flat=True)
        )
        ready = Document.objects.filter(collection=collection, status="ready").count()
        pipeline_rate = len(chunk_texts) / pipeline_seconds

        if sorted(chunk_texts) != sorted(expected_texts):
            raise SystemExit("the pipeline made other chunks than its own chunker")
        # (a) raw encode() of the same backend on the same texts, again.
        raw_after, chosen = timed_encode(embedder, chunk_texts)
        raw_rate = (raw_before + raw_after) / 2
        # (b) the default torch fp32 path on the same texts.
        fp32 = LocalEmbedder(
            None,
            backend="torch",
            precision="fp32",
            batch_size=32,
            threads=os.cpu_count() or 1,
        )
        fp32.encode(chunk_texts[:64])
        started = time.perf_counter()
        reference = fp32.encode(chunk_texts)
        fp32_rate = len(chunk_texts) / (time.perf_counter() - started)
        sample = min(len(chunk_texts), 2000)
        overlap = _neighbour_overlap(reference[:sample], chosen[:sample])

        # PDFs: pages parsed per second vs pages embedded per second.
        pdf_paths = make_pdfs(texts, Path(folder), args.pdfs, pages_per_pdf=10)
        pages = 0
        page_texts: list[str] = []
        started = time.perf_counter()
        for path in pdf_paths:
            result = parse_file(path, detect(path, path.name))
            pages += result.pages or 0
            page_texts.extend(element["text"] for element in result.elements)
        parse_rate = pages / (time.perf_counter() - started)
        started = time.perf_counter()
        embedder.encode(page_texts)
        embed_pages_rate = pages / (time.perf_counter() - started)

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"documents ingested: {ready}/{args.docs}, chunks: {len(chunk_texts)}")
        print(
            f"upload (store, hash, type check, queue): {upload_seconds:.1f}s for {len(queued)} files"
        )
        print(
            f"pipeline (parse, chunk, embed, index): {pipeline_rate:.1f} chunks/s ({pipeline_seconds:.1f}s)"
        )
        print(
            f"pipeline stages: parse {stages['parse']:.1f}s, "
            f"embed {stages['embed']:.1f}s (on the embedding thread), "
            f"write {stages['write']:.1f}s (beside the embedding)"
        )
        print(
            f"raw encode ({embedder.backend}): {raw_rate:.1f} chunks/s "
            f"({raw_before:.1f} before the pipeline, {raw_after:.1f} after)"
        )
        print(f"default torch fp32 ({BUNDLED_MODEL_NAME}): {fp32_rate:.1f} chunks/s")
        print(f"ratio pipeline/raw: {pipeline_rate / raw_rate:.2f}  (target >= 0.8)")
        print(f"ratio backend/fp32: {raw_rate / fp32_rate:.2f}  (target >= 2.5)")
        print(f"quality gate: top-10 neighbour overlap {overlap:.4f} (target >= 0.98)")
        print(
            f"pdf: {pages} pages parsed at {parse_rate:.1f} pages/s, embedded at {embed_pages_rate:.1f} pages/s, "
            f"ratio {parse_rate / embed_pages_rate:.2f} (target >= 1.25)"
        )
        print(f"peak memory of the ingesting process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()

"""Backup and restore of the SciFact benchmark corpus.

Ingests SciFact abstracts through the real pipeline into a fresh embedded
database, then measures ``manage.py backup`` (size, seconds) and
``manage.py restore`` into a second, empty database (seconds), checks that
the restored database holds the same documents, chunks and vectors, and
prints the database's own size next to the archive's for comparison. With
``--encrypted`` the originals and the archive are encrypted (AES-256-GCM).

Usage: .venv/bin/python bench/backup.py [--docs 5183] [--encrypted]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, bench_stack, bench_user_and_collection, read_jsonl

BASE_DIR = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=5183, help="SciFact abstracts")
    parser.add_argument("--encrypted", action="store_true")
    args = parser.parse_args()
    if args.encrypted:
        os.environ["ENCRYPT_ORIGINALS"] = "1"
        os.environ["ENCRYPTION_KEYS"] = base64.b64encode(os.urandom(32)).decode()

    corpus = read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl")[: args.docs]
    with bench_stack() as services:
        from django.db import connection

        from bench.common import ingest_texts
        from kb.models import Chunk, Document
        from ops.backup import backup_create

        user, collection = bench_user_and_collection("SciFact backup")
        started = time.perf_counter()
        ingest_texts(
            collection,
            user,
            [(d["_id"], f"{d.get('title', '')}\n\n{d['text']}") for d in corpus],
        )
        print(
            f"ingested {Document.objects.count():,} documents, "
            f"{Chunk.objects.count():,} chunks in {time.perf_counter() - started:.0f}s",
            flush=True,
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            database_bytes = int(cursor.fetchone()[0])
        media = Path(services.var_dir) / "media" / "originals"
        originals_bytes = sum(p.stat().st_size for p in media.rglob("*") if p.is_file())

        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            result = backup_create(target_dir=Path(folder), progress=lambda _m: None)
            backup_seconds = time.perf_counter() - started

            restore_db = "bench_restore"
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {restore_db}")
                cursor.execute(f"CREATE DATABASE {restore_db}")
            url = services.env["DATABASE_URL"].replace("/archivist?", f"/{restore_db}?")
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "ARCHIVIST_VAR_DIR": str(Path(folder) / "restored"),
            }
            started = time.perf_counter()
            run = subprocess.run(
                [
                    sys.executable,
                    str(BASE_DIR / "manage.py"),
                    "restore",
                    str(result.path),
                ],
                env=env,
                cwd=BASE_DIR,
                capture_output=True,
                text=True,
                check=False,
            )
            restore_seconds = time.perf_counter() - started
            if run.returncode != 0:
                raise SystemExit(f"restore failed:\n{run.stderr}")
            import psycopg

            with psycopg.connect(url) as restored:
                row = restored.execute(
                    "SELECT count(*), md5(string_agg(embedding::text, ',' ORDER BY id)) "
                    "FROM kb_chunk"
                ).fetchone()
                assert row is not None
                chunks, vectors = row
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*), md5(string_agg(embedding::text, ',' ORDER BY id)) "
                    "FROM kb_chunk"
                )
                source_chunks, source_vectors = cursor.fetchone()

        print(f"encrypted: {'yes' if args.encrypted else 'no'}")
        print(
            f"database size {database_bytes / 1e6:.1f} MB, originals {originals_bytes / 1e6:.1f} MB"
        )
        print(
            f"backup: {result.size_bytes / 1e6:.1f} MB ({result.documents:,} documents) "
            f"in {backup_seconds:.1f}s"
        )
        print(f"restore into an empty database: {restore_seconds:.1f}s")
        print(
            f"restored chunks {chunks:,} of {source_chunks:,}; vectors identical: "
            f"{'yes' if vectors == source_vectors else 'NO'}"
        )


if __name__ == "__main__":
    main()

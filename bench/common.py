"""Shared set-up for benchmarks: the same embedded services as `make run`
(config.launcher), in a temporary folder, with Django configured against them.
Nothing in the product imports this package."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@contextlib.contextmanager
def bench_stack(*, keep: bool = False) -> Iterator[Any]:
    """PostgreSQL + pgvector and Redis started by the launcher; Django set up
    and migrated. Yields the launcher's ``EmbeddedServices`` (to start more)."""
    from config.launcher import EmbeddedServices

    var_dir = Path(tempfile.mkdtemp(prefix="archivist-bench-"))
    services = EmbeddedServices(var_dir=var_dir)
    services.env["SECRET_KEY"] = "bench-only-" + "x" * 40
    services.env["HTTPS"] = "0"
    services.env["STATIC_MANIFEST"] = "0"
    try:
        services.start_postgres()
        services.start_redis()
        os.environ.update(services.env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if os.environ.get("EMBEDDING_MODEL"):
            # As the launcher does: a new install takes the configured model.
            call_command(
                "reembed", "--model", os.environ["EMBEDDING_MODEL"], "--only-if-empty"
            )
        yield services
    finally:
        services.stop_all()
        if not keep:
            shutil.rmtree(var_dir, ignore_errors=True)


def bench_user_and_collection(name: str, username: str = "bench") -> tuple[Any, Any]:
    from accounts.models import User
    from kb.services import collection_create

    user, _ = User.objects.get_or_create(username=username)
    collection = collection_create(name=name, creator=user)
    return user, collection


def warm_worker(text: str) -> None:
    """Ingest one file into a collection of its own, then drop its chunks: the
    parser process is started and the model loaded, as in a worker after its
    first task, and nothing of it is left to count."""
    from kb.models import Chunk

    user, collection = bench_user_and_collection("bench-warm-up")
    ingest_texts(collection, user, [("warm-up", text)])
    Chunk.objects.filter(collection=collection).delete()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    import json

    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.strip().split("\t")
            if len(parts) < 3 or parts[0] == "query-id":
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def ingest_texts(
    collection: Any, user: Any, docs: list[tuple[str, str]]
) -> dict[int, str]:
    """Each (doc_id, text) becomes an uploaded .txt file that goes through the
    real pipeline (type check, parser process, chunking, embedding, index),
    run in this process instead of a Celery worker. Returns document pk -> doc_id."""
    mapping = upload_texts(collection, user, docs)
    drain_queue(mapping)
    return mapping


def upload_texts(
    collection: Any, user: Any, docs: list[tuple[str, str]]
) -> dict[int, str]:
    """What the upload request does for each (doc_id, text): store the file as
    ``doc_id.txt``, check its type and queue it. Returns document pk -> doc_id."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ingest.documents import document_upload

    mapping: dict[int, str] = {}
    for doc_id, text in docs:
        outcome = document_upload(
            collection=collection,
            uploaded=SimpleUploadedFile(f"{doc_id}.txt", text.encode("utf-8")),
            uploader=user,
        )
        if outcome.document is not None:
            mapping[outcome.document.pk] = doc_id
    return mapping


def drain_queue(document_ids: Iterable[int]) -> None:
    """Ingest the queued documents as a worker would, in this process (small
    documents share embedding batches)."""
    from ingest.pipeline import document_ingest

    for document_id in document_ids:
        document_ingest(document_id=document_id)


def percentile_rank(count: int, fraction: float) -> int:
    """The position of the value at ``fraction`` (0..1) among ``count``
    sorted values (nearest rank)."""
    return min(count - 1, round(fraction * (count - 1)))


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of the sorted values (nearest rank)."""
    return sorted(values)[percentile_rank(len(values), fraction)]

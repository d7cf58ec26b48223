"""Each collection's chunk count follows its documents' (kept by triggers),
whatever statement changes them: search sizes permitted sets from it."""

from __future__ import annotations

from django.db import connection

from ingest.pipeline import MARK_READY_SQL
from kb.models import Collection, Document
from ops.retention import document_archive
from tests.conftest import World


def _document(collection: Collection, name: str, chunks: int = 0) -> Document:
    return Document.objects.create(
        collection=collection,
        title=name,
        original_filename=f"{name}.txt",
        sha256=name.encode().hex().ljust(64, "0"),
        chunk_count=chunks,
    )


def _counts(world: World) -> tuple[int, int]:
    a = Collection.objects.get(pk=world.collection_a.pk).chunk_count
    b = Collection.objects.get(pk=world.collection_b.pk).chunk_count
    return a, b


def test_chunk_count_follows_inserts_updates_and_deletes(world: World) -> None:
    # The fixture's document is still queued: no chunks yet.
    assert _counts(world) == (0, 0)
    first = _document(world.collection_a, "first", chunks=5)
    second = _document(world.collection_b, "second")
    assert _counts(world) == (5, 0)

    # Ingestion marks a batch ready in one statement, across collections.
    with connection.cursor() as cursor:
        cursor.execute(
            MARK_READY_SQL,
            [Document.Status.READY, [first.pk, second.pk], [7, 11], [1, 1], ["", ""]],
        )
    assert _counts(world) == (7, 11)

    # Progress and heartbeats change no count.
    Document.objects.filter(pk__in=[first.pk, second.pk]).update(progress=50)
    assert _counts(world) == (7, 11)

    second.delete()
    assert _counts(world) == (7, 0)
    Document.objects.filter(pk=first.pk).update(collection=world.collection_b)
    assert _counts(world) == (0, 7)


def test_archived_document_leaves_its_collection_count(world: World) -> None:
    kept = _document(world.collection_a, "kept", chunks=3)
    archived = _document(world.collection_a, "archived", chunks=4)
    assert _counts(world)[0] == 7

    assert document_archive(document=archived)

    archived.refresh_from_db()
    assert archived.chunk_count == 0
    assert _counts(world)[0] == kept.chunk_count == 3

"""The real pipeline: upload, a real Celery worker, unstructured, the real
embedding model, PostgreSQL + pgvector."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import default_storage
from django.test import Client

from kb.models import Chunk, Document
from kb.search import search_chunks
from tests.conftest import World
from tests.ingest.conftest import FORMATS, upload, upload_bytes, wait_final

HANDBOOK = FORMATS / "handbook-1p.docx"


def test_uploaded_document_becomes_ready_and_searchable(ingest_world: World) -> None:
    world = ingest_world
    outcome = upload_bytes(
        world,
        world.collection_a,
        "leave-policy.md",
        b"# Parental leave\n\nEmployees receive sixteen weeks of paid parental leave.\n\n"
        b"# Remote work\n\nStaff may work remotely on Fridays with manager approval.\n",
    )
    assert outcome.accepted
    document = wait_final([outcome.document.pk], timeout=180)[outcome.document.pk]
    assert document.status == Document.Status.READY, document.failure_reason
    assert document.progress == 100
    chunks = list(Chunk.objects.filter(document=document).order_by("ordinal"))
    assert [chunk.section_title for chunk in chunks] == [
        "Parental leave",
        "Remote work",
    ]
    assert all(chunk.embedding_model.endswith("all-MiniLM-L6-v2") for chunk in chunks)
    hits = search_chunks(user=world.bob, query="how many weeks of parental leave").hits
    assert hits and hits[0].document_id == document.pk
    # charlie has no grant: nothing, even for the exact words.
    assert search_chunks(user=world.charlie, query="parental leave").hits == []


def test_duplicate_is_reported_not_ingested_twice(ingest_world: World) -> None:
    world = ingest_world
    first = upload(world, world.collection_a, HANDBOOK)
    second = upload(world, world.collection_a, HANDBOOK, name="copy.docx")
    assert first.accepted and not second.accepted
    assert second.duplicate_of == first.document
    # The same file in another collection is a separate document.
    assert upload(world, world.collection_b, HANDBOOK).accepted


def test_rejected_file_says_why_and_stores_nothing(ingest_world: World) -> None:
    world = ingest_world
    before = set(Path(default_storage.path("")).rglob("*"))
    outcome = upload(world, world.collection_a, FORMATS / "simple.zip")
    assert not outcome.accepted
    assert "ZIP archives are not ingested" in outcome.rejected_reason
    assert not Document.objects.exclude(pk=world.document_a.pk).exists()
    after = {p for p in Path(default_storage.path("")).rglob("*") if p.is_file()}
    assert after <= before


def test_extension_does_not_decide_the_type(ingest_world: World) -> None:
    """A Word file renamed .txt is still read as Word."""
    world = ingest_world
    outcome = upload(world, world.collection_a, HANDBOOK, name="handbook.txt")
    assert outcome.document.content_type.endswith("wordprocessingml.document")
    document = wait_final([outcome.document.pk], timeout=180)[outcome.document.pk]
    assert document.status == Document.Status.READY


def test_new_version_keeps_identity_and_replaces_chunks(ingest_world: World) -> None:
    world = ingest_world
    first = upload_bytes(
        world, world.collection_a, "faq.txt", b"The cafeteria opens at eight."
    )
    wait_final([first.document.pk], timeout=180)
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ingest.documents import document_upload

    second = document_upload(
        collection=world.collection_a,
        uploaded=SimpleUploadedFile("faq.txt", b"The cafeteria now opens at nine."),
        uploader=world.alice,
        replace=first.document,
    )
    assert second.document.pk == first.document.pk
    document = wait_final([first.document.pk], timeout=180)[first.document.pk]
    assert document.version == 2 and document.status == Document.Status.READY
    texts = list(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert texts == ["The cafeteria now opens at nine."]


def test_delete_removes_file_and_chunks(ingest_world: World) -> None:
    world = ingest_world
    outcome = upload(world, world.collection_a, HANDBOOK)
    document = wait_final([outcome.document.pk], timeout=180)[outcome.document.pk]
    stored = Path(default_storage.path(document.storage_path))
    assert stored.exists() and document.chunk_count > 0
    version = world.collection_a.__class__.objects.get(pk=world.collection_a.pk).version
    client = Client()
    client.force_login(world.alice)
    assert client.delete(f"/api/v1/documents/{document.pk}/").status_code == 204
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert not stored.exists()
    assert (
        world.collection_a.__class__.objects.get(pk=world.collection_a.pk).version
        > version
    )


def test_collection_a_uploads_never_show_in_collection_b(ingest_world: World) -> None:
    world = ingest_world
    outcome = upload_bytes(
        world, world.collection_a, "secret.txt", b"Project Nightingale budget"
    )
    wait_final([outcome.document.pk], timeout=180)
    from kb.search import SearchFilters

    in_b = search_chunks(
        user=world.alice,
        query="Nightingale budget",
        filters=SearchFilters(collection_ids=(world.collection_b.pk,)),
    )
    assert in_b.hits == []
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    assert client.get(f"/api/v1/documents/{outcome.document.pk}/").status_code == 404
    listed = client.get(
        f"/api/v1/collections/{world.collection_b.pk}/documents/"
    ).json()
    assert listed["results"] == []


def test_upload_over_the_api_and_watch_progress(ingest_world: World) -> None:
    world = ingest_world
    client = Client()
    client.force_login(world.alice)
    with HANDBOOK.open("rb") as handle:
        response = client.post(
            f"/api/v1/collections/{world.collection_a.pk}/documents/",
            {"files": [handle]},
        )
    assert response.status_code == 201, response.content
    [result] = response.json()
    assert result["outcome"] == "queued"
    document_id = result["document"]["id"]
    wait_final([document_id], timeout=180)
    body = client.get(f"/api/v1/documents/{document_id}/").json()
    assert body["status"] == "ready" and body["chunk_count"] > 0
    download = client.get(f"/api/v1/documents/{document_id}/download/")
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert b"".join(download.streaming_content) == HANDBOOK.read_bytes()


def test_viewer_cannot_upload(ingest_world: World) -> None:
    world = ingest_world
    client = Client()
    client.force_login(world.bob)
    with HANDBOOK.open("rb") as handle:
        response = client.post(
            f"/api/v1/collections/{world.collection_a.pk}/documents/",
            {"files": [handle]},
        )
    assert response.status_code == 403
    assert not Document.objects.exclude(pk=world.document_a.pk).exists()


def test_a_batch_longer_than_a_slice_writes_every_document_once(
    ingest_world: World,
) -> None:
    """Documents queued together share a batch whose chunks are embedded in
    slices; each document is written when its last chunk is embedded, while
    the next slice is encoded, including one whose chunks span two slices."""
    from django.db import transaction

    from ingest.pipeline import EMBED_SLICE_CHUNKS

    world = ingest_world

    def handbook(name: str) -> bytes:
        sections = [
            f"# {name} section {number}\n\n"
            + f"Paragraph {number} of the {name} handbook explains a rule. " * 8
            for number in range(120)
        ]
        sections.append(f"# Closing\n\nThe {name} handbook ends with zanzibarite.\n")
        return "\n\n".join(sections).encode()

    with transaction.atomic():  # queued together, so claimed as one batch
        outcomes = [
            upload_bytes(world, world.collection_a, f"{name}.md", handbook(name))
            for name in ("alpha", "beta", "gamma")
        ]
    ids = [outcome.document.pk for outcome in outcomes]
    documents = wait_final(ids, timeout=300)
    total = 0
    for document in documents.values():
        assert document.status == Document.Status.READY, document.failure_reason
        assert document.attempts == 1
        ordinals = list(
            Chunk.objects.filter(document=document).values_list("ordinal", flat=True)
        )
        assert sorted(ordinals) == list(range(document.chunk_count))
        total += document.chunk_count
    assert total > EMBED_SLICE_CHUNKS
    hits = search_chunks(user=world.alice, query="zanzibarite gamma handbook").hits
    assert hits and hits[0].document_id == ids[2]


def test_an_empty_file_is_refused_alone_in_a_multi_file_upload(world: World) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = Client()
    client.force_login(world.alice)
    response = client.post(
        f"/api/v1/collections/{world.collection_a.pk}/documents/",
        {
            "files": [
                SimpleUploadedFile("blank.txt", b""),
                SimpleUploadedFile("notes.txt", b"Meeting notes: budget approved."),
            ]
        },
    )
    assert response.status_code == 201, response.content
    blank, notes = response.json()
    assert blank["outcome"] == "rejected" and blank["document"] is None
    assert "The file is empty" in blank["reason"]
    assert notes["outcome"] == "queued"
    assert Document.objects.filter(
        collection=world.collection_a, original_filename="notes.txt"
    ).exists()
    assert not Document.objects.filter(original_filename="blank.txt").exists()

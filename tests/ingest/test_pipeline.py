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

    from ingest.services import document_upload

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

"""Retention: archive (kept, out of search) or purge old documents per
collection; audit entries past their retention are deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import AuditEvent
from ingest.documents import document_reingest
from kb.models import Chunk, Collection, Document
from kb.search import search_chunks
from ops.retention import audit_retention, retention_run
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final

pytestmark = pytest.mark.slow


def _age(document: Document, days: int) -> None:
    Document.objects.filter(pk=document.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days)
    )


def test_archive_then_purge(ingest_world: World) -> None:
    world = ingest_world
    old = upload_bytes(
        world, world.collection_a, "old.txt", b"Zebrafish lanterns glow."
    ).document
    new = upload_bytes(
        world, world.collection_a, "new.txt", b"Zebrafish fins regrow."
    ).document
    assert old is not None and new is not None
    wait_final([old.pk, new.pk], timeout=120)
    _age(old, 40)
    version = Collection.objects.get(pk=world.collection_a.pk).version
    Collection.objects.filter(pk=world.collection_a.pk).update(
        retention_action="archive", retention_days=30
    )

    assert retention_run()["archived"] == 1
    old.refresh_from_db()
    assert old.archived_at is not None
    assert not Chunk.objects.filter(document=old).exists()
    assert default_storage.exists(old.storage_path)  # the original is kept
    assert Collection.objects.get(pk=world.collection_a.pk).version > version
    found = {
        hit.document_id
        for hit in search_chunks(user=world.alice, query="zebrafish").hits
    }
    assert new.pk in found and old.pk not in found
    assert retention_run()["archived"] == 0  # once only

    # Re-ingesting an archived document brings it back.
    assert document_reingest(document=old)
    old = wait_final([old.pk], timeout=120)[old.pk]
    assert old.status == Document.Status.READY and old.archived_at is None
    assert Chunk.objects.filter(document=old).exists()

    _age(old, 40)
    Collection.objects.filter(pk=world.collection_a.pk).update(retention_action="purge")
    assert retention_run()["purged"] == 1
    assert not Document.objects.filter(pk=old.pk).exists()
    assert Document.objects.filter(pk=new.pk).exists()
    # The file goes after the commit.
    assert not default_storage.exists(old.storage_path)


def test_collections_without_policy_keep_everything(world: World) -> None:
    _age(world.document_a, 4000)
    assert retention_run() == {"archived": 0, "purged": 0, "audit_deleted": 0}
    assert Document.objects.filter(pk=world.document_a.pk).exists()


def test_audit_retention(world: World, settings) -> None:
    AuditEvent.objects.create(
        action=AuditEvent.Action.LOGIN_FAILED,
        created_at=timezone.now() - dt.timedelta(days=400),
    )
    recent = AuditEvent.objects.count() - 1
    settings.AUDIT_RETENTION_DAYS = 0
    assert audit_retention() == 0
    settings.AUDIT_RETENTION_DAYS = 365
    assert audit_retention() == 1
    assert AuditEvent.objects.count() == recent


def test_managers_set_the_policy_in_the_collection_settings(
    world: World, client
) -> None:
    url = f"/collections/{world.collection_a.pk}/settings/"
    client.force_login(world.alice)
    form = {"name": "Collection A", "description": "handbook"}
    missing_days = client.post(url, {**form, "retention_action": "archive"})
    assert missing_days.status_code == 200
    assert "how many days" in missing_days.content.decode()
    saved = client.post(
        url, {**form, "retention_action": "archive", "retention_days": "30"}
    )
    assert saved.status_code == 302
    collection = Collection.objects.get(pk=world.collection_a.pk)
    assert (collection.retention_action, collection.retention_days) == ("archive", 30)
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.COLLECTION_CHANGED,
        details__fields__contains=["retention_days"],
    ).exists()
    client.force_login(world.bob)  # a viewer of A
    assert (
        client.post(
            url, {**form, "retention_action": "purge", "retention_days": "1"}
        ).status_code
        == 403
    )
    assert (
        Collection.objects.get(pk=world.collection_a.pk).retention_action == "archive"
    )

"""The same file sent by several requests at the same moment: one document,
every other request told "duplicate", and no stored original left behind."""

from __future__ import annotations

import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import token_create
from kb.models import Document
from ops.backup import storage_check
from tests.conftest import World

ROUNDS = 20


def _send_together(url: str, token: str, content: bytes, senders: int) -> list[dict]:
    barrier = threading.Barrier(senders)
    replies: list[dict] = []
    errors: list[BaseException] = []

    def send(index: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            upload = SimpleUploadedFile(f"same-{index}.txt", content)
            barrier.wait()
            response = client.post(url, {"files": [upload]}, format="multipart")
            replies.append({"status": response.status_code, "body": response.json()})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return replies


@pytest.mark.django_db(transaction=True)
def test_simultaneous_identical_uploads_make_one_document_and_no_orphan(
    world: World,
) -> None:
    token = token_create(user=world.alice, name="uploader").plaintext
    url = f"/api/v1/collections/{world.collection_b.pk}/documents/"
    orphans_before = set(storage_check().orphan_files)
    for round_number in range(ROUNDS):
        senders = 2 + round_number % 3
        content = f"Round {round_number}: the same words from every sender.".encode()
        replies = _send_together(url, token, content, senders)

        assert sorted(r["status"] for r in replies) == [200] * (senders - 1) + [201]
        outcomes = sorted(r["body"][0]["outcome"] for r in replies)
        assert outcomes == ["duplicate"] * (senders - 1) + ["queued"]
        stored = Document.objects.filter(
            collection=world.collection_b, original_filename__startswith="same-"
        ).filter(sha256=Document.objects.get(pk=_queued_id(replies)).sha256)
        assert stored.count() == 1
        assert {
            r["body"][0]["duplicate_of"]
            for r in replies
            if r["body"][0]["outcome"] == "duplicate"
        } == {_queued_id(replies)}

    report = storage_check()
    assert set(report.orphan_files) == orphans_before
    assert report.missing_files == []


def _queued_id(replies: list[dict]) -> int:
    (queued,) = [r for r in replies if r["body"][0]["outcome"] == "queued"]
    return int(queued["body"][0]["document"]["id"])

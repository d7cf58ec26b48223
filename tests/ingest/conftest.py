from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from ingest.documents import UploadOutcome, document_upload
from kb.models import Collection, Document
from tests.conftest import World

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FORMATS = DATA / "docs" / "formats"
ADVERSARIAL = DATA / "docs" / "adversarial"


def upload(
    world: World, collection: Collection, path: Path, name: str | None = None
) -> UploadOutcome:
    uploaded = SimpleUploadedFile(name or path.name, path.read_bytes())
    return document_upload(
        collection=collection, uploaded=uploaded, uploader=world.alice
    )


def upload_bytes(
    world: World, collection: Collection, name: str, content: bytes
) -> UploadOutcome:
    return document_upload(
        collection=collection,
        uploaded=SimpleUploadedFile(name, content),
        uploader=world.alice,
    )


def wait_final(ids: Iterable[int], timeout: float) -> dict[int, Document]:
    """Poll until every document is ready, failed or cancelled."""
    wanted = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        documents = {d.pk: d for d in Document.objects.filter(pk__in=wanted)}
        if all(d.is_final for d in documents.values()) or time.monotonic() > deadline:
            return documents
        time.sleep(0.5)

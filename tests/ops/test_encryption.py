"""Encryption at rest: originals stored sealed, read back intact through
every path, keys rotated without downtime, and a wrong or missing key is a
clear error, never garbage."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from ingest.documents import document_upload
from kb.crypto import (
    CANARY_NAME,
    SEGMENT_BYTES,
    DecryptionError,
    canary_check,
    encrypted_key_id,
    key_id,
    keyring,
)
from kb.models import Document
from kb.storage import open_original, plaintext_path
from ops.backup import backup_create
from ops.encryption import reencrypt_originals
from tests.conftest import World

OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    """Each test its own media folder: rotation walks every stored file."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }
    return Path(default_storage.path(""))


@pytest.fixture
def encryption(settings) -> Iterator[None]:
    settings.ENCRYPT_ORIGINALS = True
    settings.ENCRYPTION_KEYS = [OLD_KEY]
    yield


def _files(world: World) -> list[tuple[Document, bytes]]:
    # One small, one spanning several segments, one exactly a segment long.
    contents = [
        ("small.txt", b"Quarterly figures rose in the north."),
        ("large.txt", b"A line of the long report.\n" * (SEGMENT_BYTES // 10)),
        ("exact.txt", b"x" * SEGMENT_BYTES),
    ]
    stored = []
    for name, content in contents:
        document = document_upload(
            collection=world.collection_a,
            uploaded=SimpleUploadedFile(name, content),
            uploader=world.alice,
        ).document
        if document is not None:
            stored.append((document, content))
    return stored


def _read(document: Document) -> bytes:
    with open_original(document.storage_name) as handle:
        return handle.read()


def test_encrypt_rotate_and_read_back(
    world: World, encryption, settings, client, media: Path
) -> None:
    canary_check(media)  # start-up writes the canary under the first key
    stored = _files(world)
    assert len(stored) == 3
    for document, content in stored:
        path = media / document.storage_path
        raw = path.read_bytes()
        assert raw.startswith(b"ARCHENC1") and content[:32] not in raw
        assert encrypted_key_id(path) == key_id(base64.b64decode(OLD_KEY)).hex()
        assert _read(document) == content
        assert hashlib.sha256(_read(document)).hexdigest() == document.sha256
        with plaintext_path(document.storage_name) as plain:
            assert plain != path and plain.read_bytes() == content
        assert not plain.exists()  # the parser's plaintext copy is removed

    # The portal download serves plaintext.
    client.force_login(world.alice)
    small = stored[0][0]
    response = client.get(f"/documents/{small.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == stored[0][1]

    # Rotation: new key first, old one still listed while files are rewritten.
    settings.ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    counts = reencrypt_originals()
    assert counts["rewritten"] >= len(stored)
    assert reencrypt_originals()["rewritten"] == 0  # idempotent
    settings.ENCRYPTION_KEYS = [NEW_KEY]  # the old key is gone now
    canary_check(media)
    for document, content in stored:
        assert encrypted_key_id(media / document.storage_path) == keyring().active_id
        assert _read(document) == content


def test_wrong_or_missing_key_is_a_clear_error(
    world: World, encryption, settings, media: Path
) -> None:
    canary_check(media)
    document, _content = _files(world)[0]
    settings.ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(ImproperlyConfigured, match="not in ENCRYPTION_KEYS"):
        canary_check(media)
    with pytest.raises(DecryptionError, match="not in ENCRYPTION_KEYS"):
        _read(document)
    settings.ENCRYPTION_KEYS = []
    with pytest.raises(
        ImproperlyConfigured,
        match=r"ENCRYPTION_KEYS \(or ENCRYPTION_KEYS_FILE\) is empty",
    ):
        keyring()
    settings.ENCRYPT_ORIGINALS = False
    with pytest.raises(ImproperlyConfigured, match="encrypted"):
        canary_check(media)
    settings.ENCRYPTION_KEYS = ["not-base64!"]
    with pytest.raises(ImproperlyConfigured, match="base64"):
        keyring()


def test_tampering_and_truncation_are_detected(
    world: World, encryption, media: Path
) -> None:
    document, _content = _files(world)[1]
    path = media / document.storage_path
    original = path.read_bytes()
    try:
        tampered = bytearray(original)
        tampered[len(original) // 2] ^= 1
        path.write_bytes(bytes(tampered))
        with pytest.raises(DecryptionError, match="integrity"):
            _read(document)
        # Cut at a segment boundary: every remaining segment is valid, but
        # the last one is not marked last.
        path.write_bytes(original[: 28 + SEGMENT_BYTES + 16])
        with pytest.raises(DecryptionError, match="integrity"):
            _read(document)
    finally:
        path.write_bytes(original)
    assert len(_read(document)) > SEGMENT_BYTES


def test_turning_encryption_on_encrypts_existing_files_and_backups(
    transactional_db: None, world: World, settings, tmp_path: Path, media: Path
) -> None:
    plain_path = media / world.document_a.storage_path
    assert not plain_path.read_bytes().startswith(b"ARCHENC1")
    settings.ENCRYPT_ORIGINALS = True
    settings.ENCRYPTION_KEYS = [OLD_KEY]
    reencrypt_originals()
    assert plain_path.read_bytes().startswith(b"ARCHENC1")
    assert _read(world.document_a) == b"Welcome to the handbook."
    result = backup_create(target_dir=tmp_path)
    assert result.path.name.endswith(".tar.enc")
    sealed = result.path.read_bytes()
    assert sealed.startswith(b"ARCHENC1") and b"manifest.json" not in sealed
    # Turning it off again writes plaintext back.
    reencrypt_originals(decrypt=True)
    assert plain_path.read_bytes() == b"Welcome to the handbook."
    assert not (media / CANARY_NAME).exists()

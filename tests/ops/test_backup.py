"""Backup taken while a document is being ingested, restored into a fresh
database and media folder: every document, chunk, vector, grant and
original is there, and the interrupted document is queued again."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from kb.models import Document
from ops.backup import BackupError, backup_create, backup_restore, storage_check
from tests.conftest import World
from tests.ingest.conftest import FORMATS, upload, upload_bytes, wait_final

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parents[2]
ACTIVE = {"parsing", "chunking", "embedding"}

SNAPSHOT_QUERIES = {
    "users": "SELECT id, username, password, is_staff FROM accounts_user ORDER BY id",
    "groups": "SELECT user_id, group_id FROM accounts_user_groups ORDER BY 1, 2",
    "collections": "SELECT id, name, description FROM kb_collection ORDER BY id",
    "grants": "SELECT collection_id, user_id, group_id, role FROM kb_collectiongrant "
    "ORDER BY 1, 2, 3",
    "tokens": "SELECT id, digest, collection_scoped FROM accounts_apitoken ORDER BY id",
}
CHUNKS = (
    "SELECT c.document_id, c.ordinal, c.text, c.page, c.embedding::text, "
    "c.embedding_model, c.search_vector::text FROM kb_chunk c "
    "JOIN kb_document d ON d.id = c.document_id "
    "WHERE d.status = 'ready' ORDER BY 1, 2"
)


def _rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return list(cursor.fetchall())


def _wait_status(document_id: int, statuses: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Document.objects.get(pk=document_id).status in statuses:
            return
        time.sleep(0.1)
    raise AssertionError(f"document {document_id} never reached {statuses}")


def _restore_url(name: str) -> str:
    params = connection.settings_dict
    return (
        f"postgresql://{params['USER']}:{params['PASSWORD']}@/{name}"
        f"?host={params['HOST']}"
    )


def test_backup_mid_ingestion_restores_everything(
    ingest_world: World, tmp_path: Path
) -> None:
    world = ingest_world
    settled = [
        upload_bytes(
            world,
            world.collection_a if number % 2 else world.collection_b,
            f"note-{number}.txt",
            f"Note {number}: the quarterly figures for region {number} rose.".encode(),
        ).document
        for number in range(6)
    ]
    assert all(
        d.status == "ready" for d in wait_final([d.pk for d in settled], 120).values()
    )
    big = upload(world, world.collection_b, FORMATS / "handbook-872p.docx").document
    _wait_status(big.pk, ACTIVE, timeout=120)

    result = backup_create(target_dir=tmp_path / "backups")
    assert Document.objects.get(pk=big.pk).status != "failed"
    assert result.path.exists() and result.size_bytes > 0
    assert result.missing == []

    with connection.cursor() as cursor:
        source = {name: _rows(cursor, sql) for name, sql in SNAPSHOT_QUERIES.items()}
        source_chunks = _rows(cursor, CHUNKS)
        source_documents = _rows(
            cursor, "SELECT id, sha256 FROM kb_document ORDER BY id"
        )

    name = f"restore_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    var_dir = tmp_path / "restored"
    env = {
        **os.environ,
        "DATABASE_URL": _restore_url(name),
        "ARCHIVIST_VAR_DIR": str(var_dir),
        # The restored installation's broker traffic stays away from the tests'.
        "REDIS_URL": settings.REDIS_URL.rsplit("/", 1)[0] + "/7",
    }
    try:
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "restore", str(result.path)],
            env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr + run.stdout
        assert time.monotonic() - started < 300

        with (
            psycopg.connect(_restore_url(name)) as restored,
            restored.cursor() as cursor,
        ):
            for key, sql in SNAPSHOT_QUERIES.items():
                assert _rows(cursor, sql) == source[key], key
            documents = dict(_rows(cursor, "SELECT id, status FROM kb_document"))
            # Every document; the one being ingested waits for the reaper.
            assert set(documents) == {pk for pk, _sha in source_documents}
            assert all(documents[d.pk] == "ready" for d in settled)
            assert documents[big.pk] in {"parsing", "ready"}
            restored_chunks = _rows(cursor, CHUNKS)
            if documents[big.pk] == "parsing":
                cursor.execute(
                    "SELECT attempts, heartbeat_at < now() - interval '1 day' "
                    "FROM kb_document WHERE id = %s",
                    [big.pk],
                )
                assert cursor.fetchone() == (0, True)
                source_chunks = [row for row in source_chunks if row[0] != big.pk]
            assert restored_chunks == source_chunks
            assert len(restored_chunks) >= len(settled)

        media = var_dir / "media"
        for pk, sha in source_documents:
            stored = media / Document.objects.get(pk=pk).storage_path
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha

        check = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "check_storage"],
            env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr

        # A second restore into the now-full installation is refused.
        again = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "restore", str(result.path)],
            env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert again.returncode != 0
        assert "empty" in again.stderr
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    wait_final([big.pk], timeout=600)


def test_damaged_archive_changes_nothing(
    transactional_db: None, world: World, tmp_path: Path
) -> None:
    result = backup_create(target_dir=tmp_path)
    data = bytearray(result.path.read_bytes())
    marker = data.find(b"Welcome to the handbook.")
    assert marker > 0
    data[marker] ^= 0x20  # one flipped letter in the stored original
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        backup_restore(archive=damaged, force=True)
    assert Document.objects.filter(pk=world.document_a.pk).exists()
    with pytest.raises(BackupError, match="empty"):
        backup_restore(archive=result.path)


def test_storage_check_finds_orphans_and_missing_files(world: World) -> None:
    orphan = Path(default_storage.path("originals/zz/zz-orphan"))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left behind")
    missing = Path(default_storage.path(world.document_a.storage_path))
    kept = missing.read_bytes()
    missing.unlink()
    try:
        report = storage_check()
        assert "originals/zz/zz-orphan" in report.orphan_files
        assert (
            world.document_a.pk,
            world.document_a.storage_name,
        ) in report.missing_files
        storage_check(delete_orphans=True)
        assert not orphan.exists()
    finally:
        missing.write_bytes(kept)

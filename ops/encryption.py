"""Key rotation for stored originals (see kb.crypto for the format)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from django.core.files.storage import default_storage

from kb.crypto import (
    CANARY_NAME,
    encrypted_key_id,
    keyring,
    reseal_file,
    write_canary,
)
from kb.storage import stored_originals

logger = logging.getLogger(__name__)


def reencrypt_originals(
    *, decrypt: bool = False, progress: Callable[[str], None] = logger.info
) -> dict[str, int]:
    """Bring every original under the active key (or back to plaintext)."""
    ring = keyring()
    active = ring.active_id
    rewritten = unchanged = 0
    paths = stored_originals()
    for position, path in enumerate(paths, start=1):
        current = encrypted_key_id(path)
        if decrypt:
            if current is None:
                unchanged += 1
                continue
            reseal_file(path, None, ring)
        else:
            if current == active:
                unchanged += 1
                continue
            reseal_file(path, ring.active, ring)
        rewritten += 1
        if position % 200 == 0:
            progress(f"{position}/{len(paths)} originals checked.")
    media_root = Path(default_storage.path(""))
    if decrypt:
        (media_root / CANARY_NAME).unlink(missing_ok=True)
    else:
        write_canary(media_root, ring)
    return {"rewritten": rewritten, "unchanged": unchanged}

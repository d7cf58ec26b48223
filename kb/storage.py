"""Stored originals: written under generated names, removed after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.core.files.storage import default_storage
from django.db import transaction

logger = logging.getLogger(__name__)


def storage_path(storage_name: str) -> str:
    return f"originals/{storage_name[:2]}/{storage_name}"


def delete_stored_files_on_commit(storage_names: Iterable[str]) -> None:
    names = list(storage_names)

    def remove() -> None:
        for name in names:
            try:
                default_storage.delete(storage_path(name))
            except OSError as exc:
                # The consistency check lists orphans; a stuck file must not
                # undo a committed delete.
                logger.warning("Could not delete stored original %s: %s", name, exc)

    if names:
        transaction.on_commit(remove)

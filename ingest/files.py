"""Reading stored originals."""

from __future__ import annotations

from typing import IO

from django.core.files.storage import default_storage
from django.http import Http404
from django.utils.translation import gettext as _

from kb.models import Document


def open_original(document: Document) -> IO[bytes]:
    try:
        return default_storage.open(document.storage_path, "rb")
    except FileNotFoundError:
        raise Http404(
            _("The stored file is missing; upload the document again.")
        ) from None

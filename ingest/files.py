"""Reading stored originals."""

from __future__ import annotations

from typing import IO

from django.http import Http404
from django.utils.translation import gettext as _

from kb.models import Document
from kb.storage import open_original as open_stored


def open_original(document: Document) -> IO[bytes]:
    try:
        return open_stored(document.storage_name)
    except FileNotFoundError:
        raise Http404(
            _("The stored file is missing; upload the document again.")
        ) from None

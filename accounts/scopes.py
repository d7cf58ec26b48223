"""The collections an API token may be limited to, asked of the app that owns
collections (``settings.TOKEN_SCOPES``, wired in config): identity does not
import documents."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any

from django.conf import settings

from accounts.models import Person


def collection_choices(user: Person) -> list[tuple[int, str]]:
    return list(import_module(settings.TOKEN_SCOPES).collection_choices(user))


def limit_token(token: Any, user: Person, collection_ids: Sequence[int]) -> None:
    import_module(settings.TOKEN_SCOPES).limit_token(token, user, collection_ids)

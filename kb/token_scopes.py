"""What accounts asks of kb about API tokens, without importing kb: the
collections a token may be limited to. ``settings.TOKEN_SCOPES`` names this
module; ``accounts.scopes`` loads it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.models import Person
from kb.models import Action, Collection


def collection_choices(user: Person) -> list[tuple[int, str]]:
    """The collections ``user`` may limit a token to: those they may read."""
    readable = Collection.objects.for_user(user, Action.VIEW).order_by("name")
    return [(pk, name) for pk, name in readable.values_list("pk", "name")]


def limit_token(token: Any, user: Person, collection_ids: Sequence[int]) -> None:
    """Limit ``token`` to these collections. Each must be one ``user`` may
    read; otherwise nothing is set and the ValidationError names the rest
    (the portal's form and the API refuse alike)."""
    wanted = set(collection_ids)
    readable = list(
        Collection.objects.for_user(user, Action.VIEW).filter(pk__in=wanted)
    )
    unknown = sorted(wanted - {c.pk for c in readable})
    if unknown:
        raise ValidationError(
            _("Unknown collection id: %(ids)s.")
            % {"ids": ", ".join(str(pk) for pk in unknown)},
            code="unknown_collection",
        )
    token.collections.set(readable)

"""Reading values a client sent: ids, days, redirect targets and text.

A value a client wrote by hand or by fuzzer must become either a clean value
or a clear 400/404, never an exception in a view.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

# Row ids are positive bigints: no row has id 0.
BIGINT_MAX = 2**63 - 1
NO_SUCH_ID = 0
NUL = "\x00"


class InputError(ValueError):
    """A value a client sent that cannot be used; its text is for the client."""


def parse_id(value: str | None) -> int | None:
    """A row id written in ASCII digits, or None. ``"²".isdigit()`` is true
    and ``int("²")`` fails, so ``isdigit`` alone does not do."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= BIGINT_MAX else None


def parse_ids(values: list[str]) -> tuple[int, ...]:
    """The ids asked for, as a filter. A value that cannot be an id becomes
    one no row has, so the filter matches nothing instead of being dropped
    (which would widen it to everything the user may read)."""
    return tuple(parse_id(value) or NO_SUCH_ID for value in values if value)


def parse_day(value: str | None, *, field: str) -> dt.date | None:
    """A calendar day in ISO form (``2024-05-31``); empty means none. A day
    that does not exist (``2020-13-45``) is an InputError naming the field."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            _("%(field)s must be a date written as YYYY-MM-DD, such as 2024-05-31.")
            % {"field": field}
        ) from None


def has_nul(*values: str) -> bool:
    """PostgreSQL text cannot hold NUL, and no real input needs one."""
    return any(NUL in value for value in values)


def safe_next(request: HttpRequest, candidate: str | None, fallback: str) -> str:
    """``candidate`` when it is a path on this site, else ``fallback``: the
    same rule the sign-in page uses for its ``next``."""
    if (
        candidate
        and candidate.startswith("/")
        and url_has_allowed_host_and_scheme(
            candidate,
            allowed_hosts={request.get_host()},
            require_https=request.is_secure(),
        )
    ):
        return candidate
    return fallback

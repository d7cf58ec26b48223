"""The signed-in user of a request, typed."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from accounts.models import ApiToken, User


def signed_in_user(request: Any) -> User:
    """``request.user`` as a ``User``; views call this after the login check."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied
    return user


def request_token(request: Any) -> ApiToken | None:
    """The API token a DRF request authenticated with, if any (None for sessions)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None

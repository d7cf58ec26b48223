from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions
from rest_framework.request import Request

from accounts.models import ApiToken


class ReadOnlyTokenPermission(permissions.BasePermission):
    """A read-only token may only read, unless the view says a POST is a read
    (asking a question, searching) with ``read_only_token_allowed = True``."""

    message = _("This API token is read-only.")

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken) or not token.read_only:
            return True
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(getattr(view, "read_only_token_allowed", False))


class SessionOrUnscopedToken(permissions.BasePermission):
    """Token management needs a session or a full token: a scoped or read-only
    token must never mint a broader one."""

    message = _("Manage tokens from the portal or with an unrestricted token.")

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        return not (token.read_only or token.collection_scoped)

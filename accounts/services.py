"""Writes for accounts: API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent, User
from accounts.network import client_ip

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "ak_"  # noqa: S105 - a marker, not a secret
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def token_digest(plaintext: str) -> str:
    key = settings.API_TOKEN_HMAC_KEY.encode()
    return hmac.new(key, plaintext.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plaintext: str


def token_create(
    *,
    user: User,
    name: str,
    read_only: bool = False,
    expires_at: dt.datetime | None = None,
    collection_scoped: bool = False,
    request: HttpRequest | None = None,
) -> IssuedToken:
    """Create a token; the plaintext is returned here and never stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
        digest=token_digest(plaintext),
        read_only=read_only,
        expires_at=expires_at,
        collection_scoped=collection_scoped,
    )
    audit_record(
        action=AuditEvent.Action.TOKEN_CREATED,
        actor=user,
        target=token,
        request=request,
        details={"read_only": read_only, "collection_scoped": collection_scoped},
    )
    return IssuedToken(token=token, plaintext=plaintext)


def token_revoke(
    *, token: ApiToken, actor: User, request: HttpRequest | None = None
) -> None:
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_record(
            action=AuditEvent.Action.TOKEN_REVOKED,
            actor=actor,
            target=token,
            request=request,
        )


def token_authenticate(plaintext: str) -> ApiToken | None:
    """The usable token with this plaintext, or None (unknown, revoked, expired)."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.usable()
        .select_related("user")
        .filter(digest=token_digest(plaintext))
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def audit_record(
    *,
    action: AuditEvent.Action,
    actor: Any = None,
    target: models.Model | None = None,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
    actor_username: str = "",
) -> AuditEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    token = getattr(request, "auth", None) if request is not None else None
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user else actor_username,
        action=action,
        target_type=target._meta.model_name or "" if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        ip_address=client_ip(request) if request is not None else None,
        via_token=token.prefix if isinstance(token, ApiToken) else "",
        details=details or {},
    )

"""Login, logout and failed logins go to the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import AuditEvent
from accounts.services import audit_record


@receiver(user_logged_in)
def audit_login(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    audit_record(action=AuditEvent.Action.LOGIN_SUCCEEDED, actor=user, request=request)


@receiver(user_logged_out)
def audit_logout(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    if user is not None:
        audit_record(action=AuditEvent.Action.LOGOUT, actor=user, request=request)


@receiver(user_login_failed)
def audit_login_failure(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    audit_record(
        action=AuditEvent.Action.LOGIN_FAILED,
        actor_username=str(credentials.get("username", ""))[:150],
        request=request,
    )

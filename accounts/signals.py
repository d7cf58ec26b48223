"""Login, logout and failed logins go to the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import AuditEvent
from accounts.services import audit_record

# How a session was opened, by the backend that opened it.
SIGN_IN_METHODS = {
    "accounts.backends.LocalPasswordBackend": "password",
    "accounts.backends.DirectorySessionBackend": "oidc",
    "accounts.ldap_backend.DirectoryLDAPBackend": "ldap",
}


@receiver(user_logged_in)
def audit_login(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    session = getattr(request, "session", None)
    backend = str(session.get(BACKEND_SESSION_KEY, "")) if session is not None else ""
    audit_record(
        action=AuditEvent.Action.LOGIN_SUCCEEDED,
        actor=user,
        request=request,
        details={"via": SIGN_IN_METHODS.get(backend, backend)},
    )


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

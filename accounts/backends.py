"""Authentication backends besides the directories' own."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.models import DirectoryAccount, User


def local_password_allowed(username: str | None) -> bool:
    """Local passwords may be turned off for everyone but the break-glass
    administrators (``LOCAL_PASSWORD_LOGIN``, ``BREAK_GLASS_USERS``)."""
    return (
        settings.LOCAL_PASSWORD_LOGIN or (username or "") in settings.BREAK_GLASS_USERS
    )


class LocalPasswordBackend(ModelBackend):
    """Passwords kept here, for local accounts only: a person the directory
    signs in never has a password here that works."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not local_password_allowed(username):
            return None
        user = super().authenticate(request, username, password, **kwargs)
        if user is not None and DirectoryAccount.objects.filter(user=user).exists():
            return None
        return user


class DirectorySessionBackend(ModelBackend):
    """The backend recorded in the sessions of people an OpenID provider
    signed in (accounts.signin_views); it checks no credentials itself."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        return None

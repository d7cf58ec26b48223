"""``Authorization: Bearer <token>`` for the REST API."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, status
from rest_framework.request import Request

from accounts.directory import DirectoryUnavailable
from accounts.directory_checks import authenticate_token
from accounts.models import ApiToken, User


class DirectoryUnreachable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _(
        "The company directory could not be reached to confirm this token's "
        "user. Try again in a few minutes."
    )
    default_code = "directory_unavailable"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _sep, plaintext = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        plaintext = plaintext.strip()
        if not plaintext or " " in plaintext:
            raise exceptions.AuthenticationFailed(_("Malformed bearer token header."))
        try:
            token = authenticate_token(plaintext)
        except DirectoryUnavailable as exc:
            raise DirectoryUnreachable() from exc
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("Invalid, expired or revoked API token.")
            )
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

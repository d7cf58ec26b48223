"""OpenID Connect sign-in through Authlib.

Discovery from ``OIDC_ISSUER``, the authorization code flow with PKCE (S256),
and the ID token's signature (the provider's published keys), issuer,
audience, expiry and nonce are Authlib's work. This module turns its results
into a :class:`DirectoryIdentity` and its failures into two kinds: the
provider could not be reached, or what came back cannot be trusted.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from joserfc.errors import JoseError

from accounts.directory import DirectoryIdentity, DirectoryUnavailable
from accounts.models import DirectoryAccount
from core.sealing import seal, unseal

logger = logging.getLogger(__name__)

REFRESH_TOKEN_PURPOSE = "oidc-refresh-token"  # noqa: S105 - a label, not a secret


class ProviderRejected(Exception):
    """The provider's answer is an error, or does not verify (signature,
    nonce, state, issuer, audience, expiry)."""


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER)


@lru_cache(maxsize=4)
def _client(
    issuer: str, client_id: str, client_secret: str, scopes: str, timeout: float
) -> DjangoOAuth2App:
    oauth = OAuth()
    app: DjangoOAuth2App = oauth.register(
        name="oidc",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scopes,
            "code_challenge_method": "S256",
            "default_timeout": timeout,
        },
    )
    return app


def client() -> DjangoOAuth2App:
    return _client(
        settings.OIDC_ISSUER,
        settings.OIDC_CLIENT_ID,
        settings.OIDC_CLIENT_SECRET,
        settings.OIDC_SCOPES,
        settings.OIDC_TIMEOUT,
    )


def _unreachable(exc: requests.RequestException) -> DirectoryUnavailable:
    issuer = settings.OIDC_ISSUER
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        detail = (
            f"{exc.response.url} answered HTTP {exc.response.status_code}: "
            "check OIDC_ISSUER"
        )
    else:
        detail = f"{issuer} could not be reached ({type(exc).__name__}: {exc})"
    return DirectoryUnavailable(detail)


def start(request: HttpRequest, redirect_uri: str) -> HttpResponse:
    """The redirect to the provider's sign-in page; the state, nonce and PKCE
    verifier wait in the session."""
    try:
        response: HttpResponse = client().authorize_redirect(request, redirect_uri)
    except requests.RequestException as exc:
        raise _unreachable(exc) from exc
    return response


def finish(request: HttpRequest) -> tuple[DirectoryIdentity, dict[str, Any]]:
    """The identity the provider vouches for, and its token response."""
    app = client()
    try:
        token: dict[str, Any] = app.authorize_access_token(request)
        if "userinfo" not in token:
            raise ProviderRejected("the provider returned no ID token")
        claims = dict(token["userinfo"])
        claims.update(_userinfo(app, token, claims["sub"]))
    except requests.RequestException as exc:
        raise _unreachable(exc) from exc
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as exc:
        raise ProviderRejected(f"{type(exc).__name__}: {exc}") from exc
    return identity_from_claims(claims), token


def _userinfo(app: DjangoOAuth2App, token: dict[str, Any], sub: str) -> dict[str, Any]:
    """The userinfo endpoint's claims (some providers put groups only there),
    for the same subject; nothing when the provider has no such endpoint."""
    if not app.load_server_metadata().get("userinfo_endpoint"):
        return {}
    info = dict(app.userinfo(token=token))
    if info.get("sub") != sub:
        raise ProviderRejected("userinfo is about another subject")
    return info


def _groups(claims: dict[str, Any]) -> tuple[str, ...]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        value = [value]
    return tuple(sorted({str(item) for item in value if item}))


def identity_from_claims(claims: dict[str, Any]) -> DirectoryIdentity:
    sub = str(claims["sub"])
    username = str(
        claims.get(settings.OIDC_USERNAME_CLAIM) or claims.get("email") or sub
    )
    # An address the provider says it has not verified proves nothing.
    email = "" if claims.get("email_verified") is False else claims.get("email", "")
    return DirectoryIdentity(
        source=DirectoryAccount.Source.OIDC,
        username=username[:150],
        email=str(email or ""),
        first_name=str(claims.get("given_name") or ""),
        last_name=str(claims.get("family_name") or ""),
        groups=_groups(claims),
        oidc_subject=f"{settings.OIDC_ISSUER} {sub}",
    )


def keep_refresh_token(account: DirectoryAccount, token: dict[str, Any]) -> None:
    refresh_token = token.get("refresh_token") or ""
    if refresh_token:
        account.refresh_token = seal(refresh_token, purpose=REFRESH_TOKEN_PURPOSE)
        account.save(update_fields=["refresh_token"])


def can_refresh(account: DirectoryAccount) -> bool:
    return enabled() and bool(
        unseal(account.refresh_token, purpose=REFRESH_TOKEN_PURPOSE)
    )


def refresh(account: DirectoryAccount) -> DirectoryIdentity | None:
    """What the provider says of the account's user now, through the refresh
    token kept at sign-in; None when the provider refuses (user disabled or
    removed, grant revoked). The provider's new refresh token is kept."""
    refresh_token = unseal(account.refresh_token, purpose=REFRESH_TOKEN_PURPOSE)
    app = client()
    try:
        token = app.fetch_access_token(
            grant_type="refresh_token", refresh_token=refresh_token
        )
        sub = account.oidc_subject.split(" ", 1)[-1]
        claims = {"sub": sub, **_userinfo(app, token, sub)}
    except requests.RequestException as exc:
        raise _unreachable(exc) from exc
    except (AuthlibBaseError, JoseError, ValueError, KeyError, ProviderRejected) as exc:
        logger.info("The provider refused to refresh %s: %s", account.user, exc)
        return None
    keep_refresh_token(account, token)
    return identity_from_claims(claims)


def end_session_url(id_token: str, post_logout_redirect_uri: str) -> str | None:
    """The provider's end-session address (RP-initiated logout), or None if
    it offers none or cannot be reached."""
    try:
        endpoint = client().load_server_metadata().get("end_session_endpoint")
    except requests.RequestException as exc:
        logger.warning("Provider logout skipped: %s", _unreachable(exc))
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": settings.OIDC_CLIENT_ID,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

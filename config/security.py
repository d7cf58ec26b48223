"""Content-Security-Policy on every response: scripts and everything else
from this server only (no inline scripts, no external assets), and no
framing. Inline style attributes stay allowed (htmx and the admin set some).
With OpenID Connect on, the sign-out form may lead to the provider's origin
(its end-session page), which browsers check against form-action."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


@lru_cache(maxsize=4)
def content_security_policy(oidc_issuer: str) -> str:
    parts = urlsplit(oidc_issuer)
    provider = f" {parts.scheme}://{parts.netloc}" if parts.netloc else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            f"form-action 'self'{provider}",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(
            "Content-Security-Policy", content_security_policy(settings.OIDC_ISSUER)
        )
        return response

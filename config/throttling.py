"""API rate limits per token (or per signed-in user), counted in Redis
through Django's cache; over the limit the API answers 429 with
Retry-After. Limits come from ``API_RATE_LIMITS`` and are read on every
request, so they can be changed without a restart of the code paths."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from accounts.current import request_token


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMITS.get(self.scope or "")

    def allow_request(self, request: Request, view: Any) -> bool:
        # The rate is read per request (tests and admins change it at run time).
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    # Methods counted; None counts them all.
    methods: frozenset[str] | None = None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if self.methods is not None and request.method not in self.methods:
            return None
        token = request_token(request)
        if token is not None:
            identity = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            identity = f"user-{request.user.pk}"
        else:
            return None  # anonymous requests are refused by authentication anyway
        return self.cache_format % {"scope": self.scope, "ident": identity}


class ApiRateThrottle(_SettingsRateThrottle):
    """Every API request."""

    scope = "api"


class AskRateThrottle(_SettingsRateThrottle):
    """Questions: each one runs the LLM, so they have their own, lower limit."""

    scope = "ask"
    methods = frozenset({"POST"})

"""API rate limits per token (or per signed-in user), counted in Redis; over
the limit the API answers 429 with Retry-After. Limits come from
``API_RATE_LIMITS`` and are read on every request, so they can be changed
without a restart of the code paths.

Counting is a sliding window estimated from two fixed windows (this one and
the one before, weighted by how much of it the sliding window still covers):
one Redis round trip of constant size per request, whatever the limit,
where a log of every request's time grows with the limit."""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.current import request_token
from core.redis_pool import pooled_redis

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Atomic check-and-count: KEYS = this window, the previous one; ARGV = the
# previous window's weight, the limit, the key lifetime. Refused requests are
# not counted. Returns {allowed, count in this window, count in the previous}.
_COUNT_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[1]) + current + 1 > tonumber(ARGV[2]) then
    return {0, current, previous}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, current + 1, previous}
"""


@lru_cache(maxsize=4)
def _count_script(url: str) -> Any:
    return pooled_redis(url).register_script(_COUNT_SCRIPT)


def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` -> (120, 60)."""
    number, _slash, period = rate.partition("/")
    return int(number), PERIODS[period.strip()[:1]]


class _SettingsRateThrottle(BaseThrottle):
    scope = ""
    # Methods counted; None counts them all.
    methods: frozenset[str] | None = None

    def __init__(self) -> None:
        self._wait: float | None = None

    def identity(self, request: Request) -> str | None:
        if self.methods is not None and request.method not in self.methods:
            return None
        token = request_token(request)
        if token is not None:
            return f"token-{token.pk}"
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return None  # anonymous requests are refused by authentication anyway

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = settings.API_RATE_LIMITS.get(self.scope)
        identity = self.identity(request)
        if not rate or identity is None:
            return True
        limit, duration = parse_rate(rate)
        now = time.time()
        window, into = divmod(now, duration)
        key = f"archivist:throttle:{self.scope}:{identity}:"
        previous_weight = 1 - into / duration
        try:
            allowed, current, previous = _count_script(settings.REDIS_URL)(
                keys=[f"{key}{int(window)}", f"{key}{int(window) - 1}"],
                args=[previous_weight, limit, 2 * duration],
            )
        except redis.RedisError as exc:
            # Redis is down: the health check says so; refusing every API
            # request over it would turn one fault into an outage.
            logger.warning("Rate limit not applied, Redis failed: %s", exc)
            return True
        if allowed:
            return True
        self._wait = self._seconds_until_allowed(
            limit, duration, into, int(current), int(previous)
        )
        return False

    @staticmethod
    def _seconds_until_allowed(
        limit: int, duration: int, into: float, current: int, previous: int
    ) -> float:
        if current + 1 > limit:  # only the next window helps
            return duration - into
        # The previous window's share must fall to limit - current - 1.
        needed = 1 - (limit - current - 1) / previous
        return max(0.0, needed * duration - into)

    def wait(self) -> float | None:
        # Whole seconds, rounded up (less a hair of floating-point error).
        return None if self._wait is None else max(1.0, math.ceil(self._wait - 1e-6))


class ApiRateThrottle(_SettingsRateThrottle):
    """Every API request."""

    scope = "api"


class AskRateThrottle(_SettingsRateThrottle):
    """Questions: each one runs the LLM, so they have their own, lower limit."""

    scope = "ask"
    methods = frozenset({"POST"})

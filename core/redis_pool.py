"""One Redis connection pool per process and URL, for the code that talks to
Redis directly (health checks, metrics, answer cache, rate limits) rather than
through Django's cache. Short timeouts: a dead Redis fails a call in seconds."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

TIMEOUT_SECONDS = 2.0


@lru_cache(maxsize=4)
def pooled_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )


def redis_client() -> redis.Redis:
    """The pooled client of ``REDIS_URL``."""
    return pooled_redis(settings.REDIS_URL)

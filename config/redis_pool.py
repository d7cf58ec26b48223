"""One Redis connection pool per process and URL, for the code that talks to
Redis directly (answer cache, rate limits) rather than through Django's cache."""

from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=4)
def pooled_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2)

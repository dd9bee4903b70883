"""The shared cache (sign-in, passcode and linkage-key attempt counters) when it lives in
Redis: with Redis down, the counters move to the database's cache table instead of
every sign-in answering 500. The limits keep holding across web processes, a little
slower, and go back to Redis as soon as it answers."""

from __future__ import annotations

import logging
import time
from functools import partialmethod

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

FALLBACK = "fallback"  # the CACHES alias of the database cache
DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
WARN_EVERY = 60.0  # seconds between warnings while Redis stays down
OPERATIONS = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "set_many",
    "delete_many",
    "has_key",
    "incr",
    "decr",
    "get_or_set",
)


class RedisWithFallback(RedisCache):
    _warned_at = 0.0

    def _either(self, operation: str, *args, **kwargs):
        try:
            return getattr(super(), operation)(*args, **kwargs)
        except DOWN as error:
            now = time.monotonic()
            if now - RedisWithFallback._warned_at > WARN_EVERY:
                RedisWithFallback._warned_at = now
                log.warning(
                    "The Redis cache is unavailable (%s); counting in the database", type(error).__name__
                )
            return getattr(caches[FALLBACK], operation)(*args, **kwargs)

    def redis_answers(self) -> bool:
        """For /healthz: whether Redis itself answers (rather than the fallback)."""
        try:
            super().get("healthz-probe")
        except DOWN:
            return False
        return True

    for _operation in OPERATIONS:
        locals()[_operation] = partialmethod(_either, _operation)
    del _operation

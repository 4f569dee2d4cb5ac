"""The Django cache on Redis, degrading instead of breaking while Redis is away.

Everything the cache holds can be lost: cached dashboard figures, refresh claims and
rate-limit counters (the API throttle's, allauth's). So when Redis does not answer, a
request must not fail: ``ResilientRedisCache`` then works from this process's memory (a
``LocMemCache``) and logs a warning. Rate limits become per process (each web process
counts on its own: a limit of 1,200/min allows up to workers × 1,200/min, but never
unlimited requests), cached pages are computed per process, and the consent check, the
privacy center and the admin keep answering from the database.

Cost: short socket time-outs make one failed attempt cheap (a refused connection is
immediate; an unreachable host costs ``socket_connect_timeout``), and a circuit breaker
skips Redis for ``RETRY_SECONDS`` after a failure, so requests meanwhile pay nothing;
then one caller of the process tries Redis again while the others keep using memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis import exceptions as redis_errors

from .breaker import Breaker

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What "Redis is away" looks like from redis-py: refused or timed-out connections and
# reads (also a server still loading its data, a full pool, a failed AUTH: subclasses of
# ConnectionError), something else answering on the port, and a Redis that refuses
# writes (maxmemory reached without eviction, a replica after a fail-over). Other errors
# (a wrong type, a bad command) are bugs and propagate.
UNREACHABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.InvalidResponse,
    redis_errors.OutOfMemoryError,
    redis_errors.ReadOnlyError,
    redis_errors.MasterDownError,
)


def count_hit(cache: BaseCache, key: str, ttl: int) -> int:
    """Add one to the counter ``key`` (created on its first hit to live ``ttl`` seconds)
    and return the new count: a fixed-window rate limit's counter. On Redis one round
    trip; Django's cache API takes two or three (add, exists, incr)."""
    if isinstance(cache, ResilientRedisCache):
        return cache.count_hit(key, ttl)
    # add() is a no-op when the counter exists; incr() is atomic in the local cache.
    cache.add(key, 0, timeout=ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=ttl)
        return 1


def _warn_unreachable(location: str, retry_seconds: float, error: BaseException) -> None:
    logger.warning(
        "Redis cache at %s is unreachable (%s: %s): caching and rate limits use this process's "
        "memory, and Redis is tried again every %g s",
        location,
        type(error).__name__,
        error,
        retry_seconds,
    )


def _log_recovered(location: str, seconds: float) -> None:
    logger.info("Redis cache at %s answers again after %.0f s", location, seconds)


class _Shared:
    """Per Redis location and process: the breaker and the in-memory fallback."""

    def __init__(self, location: str, retry_seconds: float, params: dict[str, Any], max_entries: int) -> None:
        # Whether Redis answers (Django builds a cache object per thread; whether Redis is
        # up is the same for all of them).
        self.breaker = Breaker(
            retry_seconds,
            warn=partial(_warn_unreachable, location, retry_seconds),
            recovered=partial(_log_recovered, location),
        )
        # Same key prefix, version and default time-out as the Redis cache; LocMemCache
        # keeps its data per name, so every thread's instance sees the same entries.
        self.fallback = LocMemCache(
            f"cdp.cache.fallback:{location}", {**params, "OPTIONS": {"MAX_ENTRIES": max_entries}}
        )


_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


def _shared_for(location: str, retry_seconds: float, params: dict[str, Any], max_entries: int) -> _Shared:
    with _shared_lock:
        if location not in _shared:
            _shared[location] = _Shared(location, retry_seconds, params, max_entries)
        return _shared[location]


@receiver(setting_changed)
def _forget_on_new_caches(*, setting: str, **kwargs: Any) -> None:
    """Tests that point CACHES elsewhere start with Redis presumed up and empty memory,
    as a new process would (Django rebuilds its cache objects on the same signal)."""
    if setting == "CACHES":
        with _shared_lock:
            for shared in _shared.values():
                shared.fallback.clear()
            _shared.clear()


def _redacted(url: str) -> str:
    """The location without a password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)).geturl()


class ResilientRedisCache(RedisCache):
    """Django's Redis cache that falls back to this process's memory while Redis is away.

    OPTIONS, besides redis-py's connection options: ``RETRY_SECONDS`` (5) how long Redis is
    skipped after a failure; ``FALLBACK_MAX_ENTRIES`` (5000) the in-memory cache's size.
    ``socket_connect_timeout`` and ``socket_timeout`` default to 0.2 s: a cache that takes
    longer is of no use to a request.
    """

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        options = dict(self._options)
        retry_seconds = float(options.pop("RETRY_SECONDS", 5))
        max_entries = int(options.pop("FALLBACK_MAX_ENTRIES", 5000))
        options.setdefault("socket_connect_timeout", 0.2)
        options.setdefault("socket_timeout", 0.2)
        self._options = options  # what RedisCacheClient passes to redis-py's pool
        location = ",".join(_redacted(url) for url in self._servers)
        shared = _shared_for(location, retry_seconds, params, max_entries)
        self._breaker = shared.breaker
        self._fallback = shared.fallback

    def _either(self, on_redis: Callable[[], T], in_memory: Callable[[], T]) -> T:
        if self._breaker.allows():
            try:
                result = on_redis()
            except UNREACHABLE as error:
                self._breaker.failed(error)
            except Exception:
                self._breaker.answered()  # e.g. incr() of a missing key: Redis did answer
                raise
            else:
                self._breaker.answered()
                return result
        return in_memory()

    def _call(self, name: str, *args: Any) -> Any:
        return self._either(
            partial(getattr(RedisCache, name), self, *args), partial(getattr(self._fallback, name), *args)
        )

    def add(self, key: str, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._call("add", key, value, timeout, version)

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        return self._call("get", key, default, version)

    def set(self, key: str, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._call("set", key, value, timeout, version)

    def touch(self, key: str, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._call("touch", key, timeout, version)

    def delete(self, key: str, version: int | None = None) -> bool:
        return self._call("delete", key, version)

    def get_many(self, keys: Iterable[str], version: int | None = None) -> dict[str, Any]:
        return self._call("get_many", list(keys), version)

    def has_key(self, key: str, version: int | None = None) -> bool:
        return self._call("has_key", key, version)

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        return self._call("incr", key, delta, version)

    def set_many(
        self, data: dict[str, Any], timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list:
        return self._call("set_many", data, timeout, version)

    def delete_many(self, keys: Iterable[str], version: int | None = None) -> None:
        self._call("delete_many", list(keys), version)

    def clear(self) -> bool:
        self._fallback.clear()
        return bool(self._call("clear"))

    def count_hit(self, key: str, ttl: int) -> int:
        """``count_hit`` on Redis: SET NX with the time-out, then INCR, in one pipeline."""

        def on_redis() -> int:
            full_key = self.make_and_validate_key(key)
            pipe = self._cache.get_client(full_key, write=True).pipeline(transaction=False)
            pipe.set(full_key, 0, ex=ttl, nx=True)
            pipe.incr(full_key)
            return int(pipe.execute()[1])

        return self._either(on_redis, partial(count_hit, self._fallback, key, ttl))

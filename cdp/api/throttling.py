"""Per-key rate limit: a fixed-window counter in the cache (Redis in production), one
round trip per request; a refused request gets 429 with ``Retry-After``."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from cdp.models import ApiKey

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/min' → (600, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


def _count(cache_key: str, ttl: int) -> int:
    """Increment the window's counter and return it. On Redis one round trip (SET NX +
    INCR in a pipeline); Django's cache API would take three (add, exists, incr)."""
    backend = getattr(cache, "_cache", None)
    if hasattr(backend, "get_client"):
        full_key = cache.make_and_validate_key(cache_key)
        pipe = backend.get_client(full_key, write=True).pipeline(transaction=False)
        pipe.set(full_key, 0, ex=ttl, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    # add() is a no-op when the counter exists; incr() is atomic in the local cache.
    cache.add(cache_key, 0, timeout=ttl)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=ttl)
        return 1


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.limit, self.period = parse_rate(settings.API_THROTTLE_RATE)
        self._wait = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey) or self.limit <= 0:
            return True
        now = time.time()
        window = int(now // self.period)
        count = _count(f"api-throttle:{key.pk}:{window}", self.period + 1)
        if count > self.limit:
            self._wait = (window + 1) * self.period - now
            return False
        return True

    def wait(self) -> float:
        return max(self._wait, 1.0)

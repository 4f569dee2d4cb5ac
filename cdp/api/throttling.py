"""Per-key rate limit: a fixed-window counter in the cache (Redis in production), one
INCR per request; a refused request gets 429 with ``Retry-After``."""

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
        cache_key = f"api-throttle:{key.pk}:{window}"
        # add() is a no-op when the counter exists; incr() is atomic in Redis.
        cache.add(cache_key, 0, timeout=self.period + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=self.period + 1)
            count = 1
        if count > self.limit:
            self._wait = (window + 1) * self.period - now
            return False
        return True

    def wait(self) -> float:
        return max(self._wait, 1.0)

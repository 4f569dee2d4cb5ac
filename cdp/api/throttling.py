"""Per-key rate limit: a fixed-window counter in the cache (Redis in production), one
round trip per request; a refused request gets 429 with ``Retry-After``. While Redis is
away the counter lives in the process's memory (``cdp.cache``): the limit then holds per
web process instead of per deployment, and the API keeps answering."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from cdp.cache import count_hit
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
        count = count_hit(caches["default"], f"api-throttle:{key.pk}:{window}", self.period + 1)
        if count > self.limit:
            self._wait = (window + 1) * self.period - now
            return False
        return True

    def wait(self) -> float:
        return max(self._wait, 1.0)

"""A circuit breaker per process for a service that may go away: Redis as the cache
(``cdp/cache.py``), Redis as the Celery broker (``cdp/broker.py``).

After a failure, callers skip the service for ``retry_seconds`` except one, which tries it
again; so while the service is away one call per period pays its time-out and the others
pay nothing. Shared by the threads of a process (whether a service answers is the same for
all of them). The warning that it is away repeats at most once a minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WARN_EVERY_SECONDS = 60.0


class Breaker:
    def __init__(
        self,
        retry_seconds: float,
        *,
        warn: Callable[[BaseException], None],
        recovered: Callable[[float], None],
    ) -> None:
        """``warn(error)`` says the service is away; ``recovered(seconds)`` that it answers
        again after that many seconds."""
        self.retry_seconds = retry_seconds
        self._warn = warn
        self._recovered = recovered
        self._lock = threading.Lock()
        self.down_since: float | None = None  # monotonic; None while the service answers
        self.retry_at = 0.0  # monotonic; the service is not tried before it
        self.warned_at: float | None = None

    def allows(self) -> bool:
        """Whether to try the service now: always while it answers; after a failure, once
        per ``retry_seconds``, by whichever caller comes first (the others do without it
        until that attempt tells whether it is back)."""
        if self.down_since is None:  # the normal case takes no lock
            return True
        now = time.monotonic()
        with self._lock:
            if now < self.retry_at:
                return False
            self.retry_at = now + self.retry_seconds
            return True

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self.retry_at = now + self.retry_seconds
            if self.down_since is None:
                self.down_since = now
            warn = self.warned_at is None or now - self.warned_at >= WARN_EVERY_SECONDS
            if warn:
                self.warned_at = now
        if warn:
            self._warn(error)

    def answered(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            down_since, self.down_since, self.warned_at = self.down_since, None, None
        if down_since is not None:
            self._recovered(time.monotonic() - down_since)

    def reset(self) -> None:
        """Forget what happened, as a new process would (tests)."""
        with self._lock:
            self.down_since, self.warned_at, self.retry_at = None, None, 0.0

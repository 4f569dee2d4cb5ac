"""What ``/healthz`` reports: the database, the cache, the broker and the outbox.

Only the database is essential. Without Redis the cache works from each process's memory
(``cdp/cache.py``); without the broker side effects wait in the outbox and nothing is
lost (``cdp/outbox.py``). Those are *degraded*, not down: the site keeps answering.
Each check is bounded by a short time-out, so a load balancer's probe stays cheap.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.db import connection

from . import broker, outbox
from .cache import UNREACHABLE, ResilientRedisCache


def database() -> str:
    """The database's vendor; raises when it does not answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def cache_state() -> str:
    """``"ok"``, ``"unreachable"`` (requests fall back to per-process memory), or
    ``"local"`` when the cache is this process's memory by configuration."""
    cache = caches["default"]
    if not isinstance(cache, ResilientRedisCache):
        return "local"
    try:
        # Past the fallback, to Redis itself, with the cache's own short time-outs.
        cache._cache.get_client(write=True).ping()
    except UNREACHABLE:
        return "unreachable"
    return "ok"


def report() -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of ``/healthz``."""
    try:
        vendor = database()
    except Exception as exc:  # noqa: BLE001 - whatever the database raised, it is down
        return 503, {"status": "error", "error": type(exc).__name__, "degraded": ["database"]}
    backlog = outbox.backlog()
    body: dict[str, Any] = {
        "status": "ok",
        "database": vendor,
        "cache": cache_state(),
        "broker": broker.check(),
        "outbox": backlog.as_dict(),
    }
    degraded = [name for name in ("cache", "broker") if body[name] == "unreachable"]
    if backlog.late:  # the broker, or beat and the workers, are away
        degraded.append("outbox")
    body["degraded"] = degraded
    if degraded:
        body["status"] = "degraded"
    return 200, body

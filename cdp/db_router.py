"""Reads on PostgreSQL streaming replicas, without lying about consent
(docs/operations.md "Read replicas").

Everything goes to the primary unless a read opts in: inside ``with replica_reads():``
(dashboards, reports for regulators, admin lists, the segment editor's live count) the ORM's
reads go to a replica. A replica may lag, so nothing that decides whether a person may be
contacted opts in: the consent check, the export's re-check and a person's own privacy
center read the primary, and a segment build matches on a replica only once it has replayed
past the build's start (``replica_at``). Three more rules keep lag out of the way:

- a read inside a transaction on the primary stays there (it may need that transaction's
  own writes, and a service that locks rows reads them where it locks them);
- every write goes to the primary, also the save of an object read from a replica;
- a replica that cannot be reached is left alone for ``REPLICA_RETRY_SECONDS`` (with a
  warning in the log) and the primary answers instead: a replica down never fails a page;
- a signed-in person who has just changed something reads their own writes
  (``ReadYourWritesMiddleware``): after a POST, their pages take a replica only once it
  has replayed past that POST, so a saved object is in the list the admin is sent back to.

Without ``DATABASE_REPLICA_URLS`` every function here is a no-op and everything reads the
primary, as before.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger(__name__)

F = TypeVar("F")

# The replica the reads of this context go to: None outside any choice, PRIMARY once a
# block chose the primary (so that blocks nested in it keep that choice).
PRIMARY = ""
_reading_from: contextvars.ContextVar[str | None] = contextvars.ContextVar("cdp_replica", default=None)
# alias → time.monotonic() before which it is not tried again.
_down_until: dict[str, float] = {}
_turn = itertools.count()
# The primary's WAL position this context's reads must see (the person's last write).
_fresh_from: contextvars.ContextVar[str | None] = contextvars.ContextVar("cdp_fresh_from", default=None)


def replicas() -> list[str]:
    return list(getattr(settings, "DATABASE_REPLICAS", []))


def _reachable(alias: str) -> bool:
    if _down_until.get(alias, 0.0) > time.monotonic():
        return False
    connection = connections[alias]
    try:
        # A kept connection may have died since (the replica restarted): one round trip tells.
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        connection.ensure_connection()
    except DatabaseError as exc:
        _down_until[alias] = time.monotonic() + settings.REPLICA_RETRY_SECONDS
        log.warning(
            "read replica %s unreachable, reading the primary for %ss: %s", alias, settings.REPLICA_RETRY_SECONDS, exc
        )
        return False
    _down_until.pop(alias, None)
    return True


def pick_replica() -> str | None:
    """A reachable replica (taking turns between several) that has replayed this context's
    own last write, if any; or None."""
    aliases = replicas()
    if not aliases:
        return None
    start = next(_turn) % len(aliases)
    fresh_from = _fresh_from.get()
    for alias in aliases[start:] + aliases[:start]:
        if not _reachable(alias):
            continue
        if fresh_from is None:
            return alias
        try:
            if replayed(alias, fresh_from):
                return alias
        except DatabaseError as exc:
            mark_down(alias, exc)
    return None


def mark_down(alias: str, reason: object) -> None:
    """A replica failed mid-read: leave it alone for a while (the caller retries on the primary)."""
    _down_until[alias] = time.monotonic() + settings.REPLICA_RETRY_SECONDS
    log.warning(
        "read replica %s failed, reading the primary for %ss: %s", alias, settings.REPLICA_RETRY_SECONDS, reason
    )


@contextmanager
def replica_reads() -> Iterator[str | None]:
    """Send this block's reads to a replica, when one is configured and reachable. Yields
    the alias used (None: the primary). Nested blocks keep the outer choice."""
    chosen = _reading_from.get()
    if chosen is not None:
        yield chosen or None
        return
    alias = None if connections[DEFAULT_DB_ALIAS].in_atomic_block else pick_replica()
    token = _reading_from.set(alias or PRIMARY)
    try:
        yield alias
    finally:
        _reading_from.reset(token)


def replica_failed(alias: str | None) -> bool:
    """After an error inside ``replica_reads``: was it the replica (now left alone for a
    while, so the caller may run the read again on the primary)?"""
    if alias is None:
        return False
    connection = connections[alias]
    try:
        usable = connection.connection is not None and connection.is_usable()
    except DatabaseError:
        usable = False
    if usable:
        return False
    with suppress(DatabaseError):
        connection.close()
    mark_down(alias, "connection lost during a read")
    return True


@contextmanager
def primary_reads() -> Iterator[None]:
    """Reads of this block go to the primary, also inside a ``replica_reads`` block."""
    token = _reading_from.set(PRIMARY)
    try:
        yield
    finally:
        _reading_from.reset(token)


def reads_from_replica(view: F) -> F:
    """``replica_reads`` for a whole (reading) view. A TemplateResponse is rendered inside,
    since that is where an admin list's page of rows is fetched. A replica that fails
    half-way is left alone and the view runs again on the primary."""

    def run(*args: Any, **kwargs: Any) -> Any:
        response = view(*args, **kwargs)  # type: ignore[operator]
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        return response

    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with replica_reads() as alias:
            try:
                return run(*args, **kwargs)
            except DatabaseError:
                if not replica_failed(alias):
                    raise
        with primary_reads():
            return run(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class ReplicaChangelistMixin:
    """Admin lists (GET) read a replica: counts, filters and a page of rows over large
    tables. Their actions (POST) and every change form stay on the primary."""

    def changelist_view(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        view = super().changelist_view  # type: ignore[misc]
        if request.method not in ("GET", "HEAD"):
            return view(request, extra_context)
        return reads_from_replica(view)(request, extra_context)


class ReadYourWritesMiddleware:
    """After a signed-in person's POST (or other unsafe request), remember in their session
    where the primary's WAL stood; until a replica has replayed past it, their reads that
    opt into a replica read the primary instead. Without replicas it does nothing."""

    SESSION_KEY = "cdp_wrote_lsn"

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        session = getattr(request, "session", None)
        if not replicas() or session is None:
            return self.get_response(request)
        token = _fresh_from.set(session.get(self.SESSION_KEY))
        try:
            response = self.get_response(request)
        finally:
            _fresh_from.reset(token)
        user = getattr(request, "user", None)
        if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") and user is not None and user.is_authenticated:
            session[self.SESSION_KEY] = primary_lsn()
        elif self.SESSION_KEY in session and _caught_up(session[self.SESSION_KEY]):
            del session[self.SESSION_KEY]
        return response


def _caught_up(lsn: str) -> bool:
    """Whether every replica has replayed up to ``lsn`` (then no read needs holding back)."""
    try:
        return all(replayed(alias, lsn) for alias in replicas() if _reachable(alias))
    except DatabaseError:
        return False


def read_alias() -> str:
    """Where a read issued now goes: for raw SQL (``connections[read_alias()].cursor()``),
    which the router never sees."""
    alias = _reading_from.get()
    if not alias or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return alias


def read_connection() -> BaseDatabaseWrapper:
    return connections[read_alias()]


class PrimaryReplicaRouter:
    """In DATABASE_ROUTERS: reads to ``read_alias()``, writes and migrations to the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        alias = read_alias()
        return None if alias == DEFAULT_DB_ALIAS else alias

    def db_for_write(self, model: type, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # A replica holds the primary's rows: an object read there may point at one read here.
        databases = {DEFAULT_DB_ALIAS, *replicas()}
        if obj1._state.db in databases and obj2._state.db in databases:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # Every other alias is a replica (also while routing to it is off): a standby
        # replays the primary's migrations and cannot run its own.
        return db == DEFAULT_DB_ALIAS


# --- How far a replica has replayed ---------------------------------------------------------


def primary_lsn() -> str:
    """The primary's current write position: whatever committed before this call is in the WAL below it."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def replayed(alias: str, lsn: str) -> bool:
    """Whether replica ``alias`` has replayed the WAL up to ``lsn`` (so shows every commit before it)."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT COALESCE(pg_last_wal_replay_lsn() >= %s::pg_lsn, false)", [lsn])
        return bool(cursor.fetchone()[0])


def replica_at(lsn: str, *, max_wait: float, poll: float = 0.05) -> str | None:
    """A reachable replica that has replayed up to ``lsn``, waiting up to ``max_wait``
    seconds for one; None when there is none (then read the primary)."""
    if max_wait <= 0 or not replicas():
        return None
    deadline = time.monotonic() + max_wait
    while True:
        for alias in replicas():
            if not _reachable(alias):
                continue
            try:
                if replayed(alias, lsn):
                    return alias
            except DatabaseError as exc:
                mark_down(alias, exc)
        if time.monotonic() >= deadline:
            log.info("no read replica replayed up to %s within %ss: the primary answers", lsn, max_wait)
            return None
        time.sleep(poll)

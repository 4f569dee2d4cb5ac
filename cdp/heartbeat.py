"""Heartbeats of long-running work (imports, segment builds): "a worker is still on it".

A job row has ``heartbeat_at``; its worker moves it on from a thread of its own, on its own
database connection, so that it moves while the work waits for a long SQL statement or a
lock, and stops the moment the process dies (SIGKILL, OOM, a lost machine). Beat marks a
running job whose heartbeat is older than ``JOBS_STALE_AFTER_SECONDS`` failed
(``imports.jobs.mark_stalled_jobs``, ``segments.services.mark_stalled_builds``); a
redelivered task may claim it in that state too. Both use ``stale_before()``, so the two
never disagree about which jobs are dead.

The beat is fenced: it updates the row only while the row still names this run (its status
and attempt), so a run whose job was meanwhile marked failed or claimed by another worker
notices (``lost``) instead of writing over the newer state.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from types import TracebackType
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import CharField, Expression, QuerySet
from django.db.models.functions import Cast, Coalesce, Trunc
from django.utils import timezone

logger = logging.getLogger(__name__)


def stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """A running job whose heartbeat is older than this has no worker left."""
    return (now or timezone.now()) - stale_after()


def last_seen_text(last_seen: Coalesce) -> Cast:
    """When a job was last heard from, as text in local time to the second (for reasons
    built in SQL)."""
    return Cast(Trunc(last_seen, "second", tzinfo=timezone.get_default_timezone()), CharField())


def fail_stalled(
    running: QuerySet[Any],
    *,
    last_seen: Coalesce,
    failed: str,
    reason_field: str,
    reason: Expression,
    now: dt.datetime,
) -> list[int]:
    """Fail the jobs of ``running`` (a queryset of running jobs) last seen (``last_seen``,
    an expression over the row) before ``stale_before(now)``: status ``failed``, the
    finish time, and ``reason`` (an SQL expression) in ``reason_field``. One SELECT that
    skips rows a live run holds locked, one UPDATE; call inside a transaction. Returns the
    ids failed."""
    stalled = running.alias(last_seen=last_seen).filter(last_seen__lt=stale_before(now))
    ids = list(stalled.select_for_update(skip_locked=True).values_list("pk", flat=True))
    if ids:
        running.filter(pk__in=ids).update(status=failed, finished_at=now, **{reason_field: reason})
    return ids


def interval() -> float:
    """Seconds between beats: five beats per stale window, so one slow beat (a busy
    database) never makes a live job look dead."""
    return max(settings.JOBS_STALE_AFTER_SECONDS / 5, 1.0)


class Heartbeat:
    """``with Heartbeat(Model.objects.filter(pk=…, status=…, attempts=…)):`` moves
    ``heartbeat_at`` of the row the queryset selects every ``interval()`` seconds while the
    block runs. ``lost`` turns true once the queryset selects nothing any more."""

    def __init__(self, row: QuerySet[Any], *, every: float | None = None) -> None:
        self.row = row
        self.every = interval() if every is None else every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def beat(self) -> bool:
        """Move the heartbeat now; False (and ``lost``) if the row is no longer ours."""
        if not self.row.update(heartbeat_at=timezone.now()):
            self.lost = True
        return not self.lost

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    close_old_connections()  # a connection the database dropped is reopened
                    if not self.beat():
                        return
                except Exception:  # noqa: BLE001 - a missed beat is retried; the window allows four
                    logger.warning("heartbeat of %s failed", self.row.model._meta.label, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

"""Sending to the Celery broker without letting a broker outage reach the caller.

The outbox (``cdp/outbox.py``) sends its rows through here. Three things keep a broker
that is down cheap for a request:

- a connection of its own with short socket time-outs (``OUTBOX_PUBLISH_TIMEOUT_MS``) and
  no reconnect loop, instead of Celery's producer pool, whose defaults retry a refused
  connection for about 0.7 s and wait for an unanswering broker for minutes;
- no publish retries (``retry=False``): a row that could not be sent waits in the
  outbox, and the relay tries it again later;
- a per-process breaker: after a failure, sends right after commit are skipped for
  ``OUTBOX_BROKER_RETRY_SECONDS`` (their rows wait for the relay), so while the broker is
  away one request per process and period pays the time-out and the others pay nothing.

The connection is kept per thread and process (kombu connections are not thread-safe,
and must not cross a fork), so a send that works costs one round trip to Redis.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from typing import Any

from django.conf import settings
from kombu import Connection
from kombu.exceptions import KombuError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis import exceptions as redis_errors

from .breaker import Breaker
from .celery import app

logger = logging.getLogger(__name__)

# What "the broker is away" looks like: kombu wraps connection failures in its
# OperationalError; a socket failing mid-send may surface as the builtin ConnectionError,
# TimeoutError or OSError, or as a redis-py error.
UNREACHABLE: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    ConnectionError,
    TimeoutError,
    OSError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
)
# Any other kombu error while sending is also the broker's, not the row's.
SEND_ERRORS = (*UNREACHABLE, KombuError)


def is_eager() -> bool:
    """Tasks run in-process (``make demo``, the test suite), not through a broker. Read from
    the Celery app, which tests switch at run time (``real_celery``)."""
    return bool(app.conf.task_always_eager)


def broker_url() -> str:
    return app.conf.broker_write_url or app.conf.broker_url


def _timeout() -> float:
    return settings.OUTBOX_PUBLISH_TIMEOUT_MS / 1000


def new_connection(url: str | None = None) -> Connection:
    """A broker connection that gives up quickly: one connect attempt bounded by the
    publish time-out, and socket reads bounded by it too (fine for sending: Redis answers an
    LPUSH at once; never use it to consume, where BRPOP blocks longer)."""
    timeout = _timeout()
    return app.connection_for_write(
        url or broker_url(),
        connect_timeout=timeout,
        transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout, "max_retries": 0},
    )


def _warn_unreachable(error: BaseException) -> None:
    logger.warning(
        "Celery broker at %s is unreachable (%s: %s): side effects wait in the outbox and are sent "
        "when it is back (relay every %d s, manage.py relay_outbox)",
        _redacted(broker_url()),
        type(error).__name__,
        error,
        settings.OUTBOX_RELAY_INTERVAL,
    )


def _log_recovered(seconds: float) -> None:
    logger.info("Celery broker at %s answers again after %.0f s", _redacted(broker_url()), seconds)


# Whether the broker took this process's last send: after a failure, sends right after
# commit are skipped for OUTBOX_BROKER_RETRY_SECONDS (their rows wait for the relay).
breaker = Breaker(settings.OUTBOX_BROKER_RETRY_SECONDS, warn=_warn_unreachable, recovered=_log_recovered)
_local = threading.local()


def _redacted(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"


def _cached_connection() -> tuple[Connection, bool]:
    """This thread's connection to the current broker, and whether it was made just now."""
    key = (os.getpid(), broker_url(), settings.OUTBOX_PUBLISH_TIMEOUT_MS)
    cached = getattr(_local, "connection", None)
    if cached is not None and cached[0] == key:
        return cached[1], False
    drop_connection()
    connection = new_connection()
    _local.connection = (key, connection)
    return connection, True


def drop_connection() -> None:
    cached = getattr(_local, "connection", None)
    _local.connection = None
    if cached is not None and cached[0][0] == os.getpid():
        # A broken connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            cached[1].release()


def send(task: Any, args: list, kwargs: dict, *, task_id: str, eta: dt.datetime | None) -> None:
    """Hand one task message to the broker; raises one of ``SEND_ERRORS`` if it did not
    take it. Results are not stored: side effects are fire-and-forget, and storing them
    would make each send subscribe to the result backend too."""
    options = {
        "task_id": task_id,
        "eta": eta,
        "retry": False,
        "ignore_result": True,
        "add_to_parent": False,
    }
    connection, fresh = _cached_connection()
    try:
        task.apply_async(args, kwargs, connection=connection, **options)
    except SEND_ERRORS:
        drop_connection()
        if fresh:
            raise
        # A kept connection may have died with a broker restart: one fresh try.
        connection, _fresh = _cached_connection()
        try:
            task.apply_async(args, kwargs, connection=connection, **options)
        except SEND_ERRORS:
            drop_connection()
            raise


def check() -> str:
    """``"ok"``, ``"unreachable"``, or ``"in-process"`` when tasks run eagerly; for
    ``/healthz``, bounded by the publish time-out."""
    if is_eager():
        return "in-process"
    try:
        with new_connection() as connection:
            connection.ensure_connection(max_retries=0, timeout=_timeout())
    except SEND_ERRORS:
        return "unreachable"
    return "ok"

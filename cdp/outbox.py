"""The transactional outbox (DESIGN.md ⚑ "Side effects go through the outbox").

A side effect (a webhook, a mail, an erasure step, a follow-up task) is an
``OutboxMessage`` row written in the transaction of the change that causes it
(``cdp.enqueue``): both commit, or neither. Then the row is *relayed*, handed to Celery:

- at once after commit, in the process that made the change (``relay_one``), unless the
  broker failed there moments ago;
- by beat's ``cdp.tasks.relay_outbox`` every ``OUTBOX_RELAY_INTERVAL`` seconds, and by
  ``manage.py relay_outbox`` (``relay_due``), for rows that could not go at once.

A relay first *claims* a row with a conditional UPDATE whose row count it checks: it
sets ``claimed_until`` a lease ahead, so no other relay takes the row meanwhile (two
relays never send one row at the same time; ``relay_due`` also locks with SKIP LOCKED on
PostgreSQL so concurrent relays take different rows instead of waiting). The row is
marked sent only after the broker took the message. If the broker did not, the row stays,
``available_at`` moves back off (doubling from 1 s to ``OUTBOX_RETRY_MAX_SECONDS``, with
jitter) and a warning is logged; nothing is raised into the request: its change has
committed and its caller gets its 2xx.

Delivery is at least once: a relay that dies between the broker's acceptance and marking
the row sent leaves it to be sent again after the lease. Every send of a row carries the
same Celery task id, ``outbox-<row id>`` (``message_id`` reads it back), and the tasks are
idempotent (STYLE.md rule 3): a second run finds its work done.

In-process mode (``make demo``, the test suite) relays the same way, and "sending" runs
the task right there, after commit, as before the outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from . import broker
from .models import OutboxMessage

logger = logging.getLogger(__name__)

# How long a relay owns a row it claimed. Sending takes milliseconds; a relay that dies
# mid-send leaves the row to the next relay after this.
CLAIM_SECONDS = 60
# Rows per claim of ``relay_due``.
BATCH = 200
# A row waiting longer than this is late (the admin's filter, /healthz's "degraded"): sent
# at once after commit or by the relay within seconds otherwise.
LATE_AFTER = dt.timedelta(minutes=1)


def add(
    task: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    countdown: float | None = None,
    on_commit: bool = True,
) -> OutboxMessage:
    """Write the row for ``task(*args, **kwargs)`` in the current transaction and relay it
    once that commits (at once outside a transaction). The task must exist: a misspelt
    name fails here, in the caller's transaction, not later in a worker.

    ``on_commit=False`` (``cdp.enqueue.enqueue``) relays at once unless the calling code
    opened a transaction; a test case's wrapping transaction does not count, as for
    Django's ``durable`` check, so code under test sends when it would in production
    (where a view runs in autocommit)."""
    import_string(task)
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task=task,
        args=list(args),
        kwargs=dict(kwargs or {}),
        eta=now + dt.timedelta(seconds=countdown) if countdown else None,
        created_at=now,
        available_at=now,
    )
    if on_commit or _in_transaction_of_the_caller():
        # Outside a transaction on_commit runs the relay at once; inside, only if it
        # commits (a rolled-back savepoint drops both the row and this callback).
        transaction.on_commit(lambda: relay_one(message))
    else:
        relay_one(message)
    return message


def _in_transaction_of_the_caller() -> bool:
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def message_id(task_id: str | None) -> int | None:
    """The outbox row a Celery task was sent from (``self.request.id`` in a bound task),
    for consumers that must recognise a repeat of one side effect."""
    if task_id and task_id.startswith("outbox-") and task_id[7:].isdigit():
        return int(task_id[7:])
    return None


def relay_one(message: OutboxMessage) -> bool:
    """Send a row its writer holds right after its transaction committed. Skipped (the row
    waits for the relay) while this process saw the broker fail in the last seconds.
    True if sent."""
    if not broker.is_eager() and not broker.breaker.allows():
        return False
    now = timezone.now()
    if not _claim([message.pk], now):
        return False  # sent already, or another relay holds it
    message.attempts += 1  # as the claim counted it
    return _send(message) is SENT


@dataclass
class Relayed:
    sent: int = 0
    failed: int = 0  # could not be sent this time; they wait, backing off
    broker_down: bool = False


def relay_due(*, limit: int | None = None, ids: Iterable[int] | None = None) -> Relayed:
    """Send the waiting rows that are due (``ids``: only those), oldest due first, up to
    ``limit``. Stops at the first broker failure and frees the rows it had not tried, so
    a broker outage costs one time-out per run, not one per row."""
    result = Relayed()
    wanted = None if ids is None else list(ids)
    while limit is None or result.sent + result.failed < limit:
        size = BATCH if limit is None else min(BATCH, limit - result.sent - result.failed)
        claimed, until = _claim_due(size, wanted)
        if not claimed:
            break
        for position, message in enumerate(claimed):
            outcome = _send(message)
            if outcome is SENT:
                result.sent += 1
                continue
            result.failed += 1
            if outcome is BROKER_DOWN:
                rest = [m.pk for m in claimed[position + 1 :]]
                # Not tried: free at once, and the claim's attempt does not count.
                OutboxMessage.objects.filter(pk__in=rest, claimed_until=until, sent_at__isnull=True).update(
                    claimed_until=None, attempts=F("attempts") - 1
                )
                result.broker_down = True
                return result
    return result


def retry_now(ids: Iterable[int] | None = None) -> Relayed:
    """Make waiting rows due at once, even those backing off, and send them (staff's
    "send now", ``relay_outbox --now``): these ``ids``, or every waiting row."""
    rows = waiting() if ids is None else waiting().filter(pk__in=list(ids))
    # A row another relay is sending right now keeps its claim: it is not sent twice.
    rows.update(available_at=timezone.now())
    return relay_due(ids=None if ids is None else rows.values_list("pk", flat=True))


def prune_sent(*, now: dt.datetime | None = None, chunk: int = 5000) -> int:
    """Delete rows sent more than ``OUTBOX_KEEP_SENT_DAYS`` ago, in chunks (short locks)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.OUTBOX_KEEP_SENT_DAYS)
    deleted = 0
    while True:
        pks = list(OutboxMessage.objects.filter(sent_at__lt=cutoff).values_list("pk", flat=True)[:chunk])
        if not pks:
            return deleted
        deleted += OutboxMessage.objects.filter(pk__in=pks).delete()[0]


def waiting() -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.filter(sent_at__isnull=True)


def late(*, now: dt.datetime | None = None) -> QuerySet[OutboxMessage]:
    """Rows waiting longer than ``LATE_AFTER``: the broker, or beat and the workers, are away."""
    return waiting().filter(created_at__lt=(now or timezone.now()) - LATE_AFTER)


@dataclass(frozen=True)
class Backlog:
    waiting: int
    oldest_seconds: float | None  # age of the oldest waiting row

    @property
    def late(self) -> bool:
        return self.oldest_seconds is not None and self.oldest_seconds > LATE_AFTER.total_seconds()

    def as_dict(self) -> dict[str, Any]:
        oldest = None if self.oldest_seconds is None else round(self.oldest_seconds, 1)
        return {"waiting": self.waiting, "oldest_waiting_seconds": oldest}


def backlog(*, now: dt.datetime | None = None) -> Backlog:
    """What waits to be sent, for ``/healthz`` and ``relay_outbox``."""
    row = waiting().aggregate(count=Count("pk"), oldest=Min("created_at"))
    oldest = row["oldest"]
    seconds = None if oldest is None else max(0.0, ((now or timezone.now()) - oldest).total_seconds())
    return Backlog(waiting=row["count"], oldest_seconds=seconds)


# --- Claiming and sending ----------------------------------------------------------------


def _due(now: dt.datetime) -> QuerySet[OutboxMessage]:
    """Waiting, due, and not held by a relay (or held by one that died)."""
    return waiting().filter(available_at__lte=now).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))


def _claim(pks: list[int], now: dt.datetime) -> dt.datetime | None:
    """Hold these rows for ``CLAIM_SECONDS`` if they are due; returns the hold's end if
    any row was taken. The UPDATE checks the condition itself, so of two relays racing for
    a row exactly one changes it (PostgreSQL re-checks a row that a concurrent UPDATE
    changed before it writes it)."""
    until = now + dt.timedelta(seconds=CLAIM_SECONDS)
    taken = _due(now).filter(pk__in=pks).update(claimed_until=until, attempts=F("attempts") + 1)
    return until if taken else None


def _claim_due(limit: int, ids: list[int] | None) -> tuple[list[OutboxMessage], dt.datetime | None]:
    now = timezone.now()
    due = _due(now).order_by("available_at", "pk")
    if ids is not None:
        due = due.filter(pk__in=ids)
    with transaction.atomic():
        # PostgreSQL: rows another relay is claiming are skipped, not waited for. SQLite
        # has no row locks; it takes the database's write lock at BEGIN (IMMEDIATE), which
        # serialises claims just as well.
        skip_locked = connection.features.has_select_for_update_skip_locked
        pks = list(due.select_for_update(skip_locked=skip_locked).values_list("pk", flat=True)[:limit])
        until = _claim(pks, now) if pks else None
        if until is None:
            return [], None
        # Exactly the rows this claim holds.
        held = OutboxMessage.objects.filter(pk__in=pks, claimed_until=until, sent_at__isnull=True)
        return list(held.order_by("available_at", "pk")), until


SENT, ROW_FAILED, BROKER_DOWN = "sent", "row failed", "broker down"


def _send(message: OutboxMessage) -> str:
    """Hand a claimed row to Celery, then mark it sent or back it off. Never raises for
    the broker. In-process, sending runs the task: the row is marked sent first (it was
    handed over), and an error of the task propagates as it always did."""
    try:
        task = import_string(message.task)
    except ImportError as error:  # a task renamed or removed since the row was written
        _failed(message, error, broker_error=False)
        return ROW_FAILED
    if broker.is_eager():
        _mark_sent(message)
        # As the seam did before the outbox (tests watch ``delay``). No redelivery
        # in-process, so no task id is needed to recognise one; a countdown runs at once.
        task.delay(*message.args, **message.kwargs)
        return SENT
    try:
        broker.send(task, message.args, message.kwargs, task_id=message.task_id, eta=message.eta)
    except broker.SEND_ERRORS as error:
        broker.breaker.failed(error)
        _failed(message, error, broker_error=True)
        return BROKER_DOWN
    except Exception as error:  # noqa: BLE001 - one bad row must not fail the request or stop the relay
        logger.exception("Outbox message %s (%s) could not be sent", message.pk, message.task)
        _failed(message, error, broker_error=False)
        return ROW_FAILED
    broker.breaker.answered()
    _mark_sent(message)
    return SENT


def _mark_sent(message: OutboxMessage) -> None:
    # The arguments go: they are not needed any more, and some carry personal data (the
    # erasure receipt's address) that must not outlive the side effect.
    OutboxMessage.objects.filter(pk=message.pk).update(
        sent_at=timezone.now(), claimed_until=None, args=[], kwargs={}, last_error=""
    )


def backoff_seconds(attempts: int) -> float:
    """1 s after the first failed attempt, doubling to ``OUTBOX_RETRY_MAX_SECONDS``; each
    delay is drawn between half and all of that, so rows written in one burst do not all
    come back at the same moment."""
    ceiling = min(float(settings.OUTBOX_RETRY_MAX_SECONDS), 2.0 ** max(0, attempts - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def _failed(message: OutboxMessage, error: BaseException, *, broker_error: bool) -> None:
    attempts = message.attempts  # counting this one
    OutboxMessage.objects.filter(pk=message.pk, sent_at__isnull=True).update(
        available_at=timezone.now() + dt.timedelta(seconds=backoff_seconds(attempts)),
        claimed_until=None,
        last_error=f"{type(error).__name__}: {error}"[:2000],
    )
    if not broker_error:
        logger.warning("Outbox message %s (%s) failed, attempt %d: %s", message.pk, message.task, attempts, error)

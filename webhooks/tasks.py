"""Celery tasks: publish an event (build its payload, make the deliveries), deliver one,
and sweep up due retries. All idempotent: a delivery is claimed with a conditional UPDATE
before it is sent, so a redelivered task does not send twice, nor one that an earlier
delivery about the same member holds back."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from cdp.enqueue import enqueue

from . import payloads, services


@shared_task(name="webhooks.tasks.publish_event")
def publish_event(event_type: str, ref: int, extra: dict | None = None) -> int:
    return len(payloads.publish(event_type, ref, extra or {}))


@shared_task(name="webhooks.tasks.publish_events")
def publish_events(event_type: str, refs: list[int]) -> int:
    """``publish_event`` for many objects of one type (an import's consent events), one
    after the other, each in its own transaction. Batches may run on different workers
    at once: as for single events, the member's sequence number and the state read after
    it (``payloads``) let a receiver keep the newest."""
    return sum(len(payloads.publish(event_type, ref, {})) for ref in refs)


@shared_task(name="webhooks.tasks.deliver")
def deliver(delivery_id: int) -> None:
    delay = services.deliver(delivery_id)
    # In-process (eager) mode a countdown would run the retry at once: the sweep below
    # picks it up when due instead.
    if delay is not None and not deliver.app.conf.task_always_eager:
        enqueue("webhooks.tasks.deliver", delivery_id, countdown=delay)


@shared_task(name="webhooks.tasks.retry_due")
def retry_due() -> int:
    """Beat's safety net: send deliveries whose retry is overdue (a lost countdown task,
    a worker that died mid-send, eager mode), each only when it is first in its member's
    line: a later one goes when the one before it is done."""
    ids = services.due_deliveries(overdue_before=timezone.now() - dt.timedelta(seconds=30))
    for pk in ids:
        enqueue("webhooks.tasks.deliver", pk)
    return len(ids)


@shared_task(name="webhooks.tasks.write_consent_files")
def write_consent_files() -> int:
    """Beat, daily: each active consent file feed's file set (``webhooks.feeds``), then the
    files past ``CONSENT_FILE_RETENTION_DAYS``. Run twice, the second run writes only what
    came since the first (an empty set when nothing did)."""
    from .feeds import services as feeds

    written = feeds.write_all()
    feeds.delete_expired_files()
    return len(written)


@shared_task(name="webhooks.tasks.delete_consent_files")
def delete_consent_files(ids: list[int]) -> int:
    """The files of consent file sets an erasure took back (``feeds.forget_member``)."""
    from .feeds import services as feeds

    return feeds.delete_file_sets(ids)

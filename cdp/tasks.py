"""Celery tasks of the core app: the outbox relay and its clean-up, run by beat
(``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from . import outbox

# Rows one relay run sends at most; the next run, seconds later, carries on.
RELAY_LIMIT = 10_000


@shared_task(name="cdp.tasks.relay_outbox", ignore_result=True)
def relay_outbox() -> int:
    """Send the outbox rows that could not go right after their commit (every
    ``OUTBOX_RELAY_INTERVAL`` seconds). Runs on several workers at once safely: each row
    is claimed before it is sent."""
    return outbox.relay_due(limit=RELAY_LIMIT).sent


@shared_task(name="cdp.tasks.prune_outbox", ignore_result=True)
def prune_outbox() -> int:
    """Delete rows sent more than ``OUTBOX_KEEP_SENT_DAYS`` ago (hourly)."""
    return outbox.prune_sent()

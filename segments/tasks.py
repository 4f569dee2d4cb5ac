"""Celery tasks: thin wrappers that load by id and call a service. Each is idempotent: a
build claims its row, so a redelivered task for a finished build does nothing."""

from __future__ import annotations

from celery import shared_task

from cdp import audit

from . import services
from .models import Segment


@shared_task(name="segments.tasks.run_build_task")
def run_build_task(build_id: int) -> dict[str, int | None] | None:
    with audit.acting_as(audit.SYSTEM):
        build = services.run_build(build_id)
    return build.funnel() if build else None


@shared_task(name="segments.tasks.scheduled_build")
def scheduled_build(segment_id: int) -> int | None:
    """Beat's entry point: queue a build of the segment (or join the one already active)."""
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return None
    with audit.acting_as(audit.Actor(type="system", label="schedule")):
        build, _created = services.request_build(segment)
    return build.pk


@shared_task(name="segments.tasks.mark_stalled_builds", ignore_result=True)
def mark_stalled_builds() -> int:
    """Beat, every minute: fail the running builds whose worker stopped (no heartbeat for
    ``JOBS_STALE_AFTER_SECONDS``); the previous build stays current."""
    return len(services.mark_stalled_builds())

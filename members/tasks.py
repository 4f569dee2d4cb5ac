"""Celery entry points of the members app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from cdp import audit

from . import services


@shared_task(name="members.tasks.refresh_member_metrics")
def refresh_member_metrics(member_ids: list[int] | None = None) -> int:
    """Recompute aggregates and lifecycle stages (all members, or the given ids).

    Idempotent: it recomputes from orders, so a redelivered task does no harm.
    """
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        return services.refresh_member_metrics(member_ids=member_ids)

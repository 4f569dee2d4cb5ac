"""Celery entry points of the insights app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from cdp import audit

from . import services


@shared_task(name="insights.tasks.refresh_dashboard_history")
def refresh_dashboard_history() -> str:
    """Nightly, after the member metrics: take this month's lifecycle snapshot if it is
    missing. Idempotent (a month is taken once), so a redelivered task does no harm."""
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        return str(services.refresh_dashboard_history())

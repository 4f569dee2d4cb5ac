"""Celery entry points of the insights app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from cdp import audit
from members.models import Brand

from . import services


@shared_task(name="insights.tasks.refresh_dashboard")
def refresh_dashboard() -> str:
    """Nightly, after the member metrics: every brand's dashboard figures, and this month's
    lifecycle snapshot if it is missing. Idempotent (figures are recomputed, a month is
    taken once), so a redelivered task does no harm."""
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        return str(services.refresh_dashboard())


@shared_task(name="insights.tasks.refresh_figures")
def refresh_figures(brand_id: int) -> None:
    """One brand's figures, for the dashboard's refresh button."""
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is not None:
        with audit.acting_as(audit.Actor(type="system", label="celery")):
            services.refresh_figures(brand=brand)

"""Demo data for the dashboard that ``seed_demo`` cannot make because it sits below this
app: a year of monthly lifecycle snapshots (taken from the demo's two years of orders,
oldest first), so the "movement month over month" has history on the first day. The data
requests come from ``seed_demo`` (``privacy.demo``, through the queue's services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp import audit

from . import services
from .models import LifecycleSnapshot

MONTHS = 12


def seed_dashboard_history(*, months: int = MONTHS) -> dict[str, Any]:
    now = timezone.now()
    month = services.month_start(now)
    wanted = []
    for _ in range(months):
        wanted.append(month)
        month = services.month_start(month - dt.timedelta(days=1))
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        for month in reversed(wanted):
            services.take_lifecycle_snapshot(month=month)
    return {"snapshots": LifecycleSnapshot.objects.count()}

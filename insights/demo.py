"""Demo data for the dashboard: what ``seed_demo`` cannot make because it sits below this
app: data requests in every state around today, and a year of monthly lifecycle snapshots
(taken from the demo's two years of orders, oldest first), so the "movement month over
month" has history on the first day."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp import audit
from consent.privacy.models import DataSubjectRequest
from members.models import Member

from . import services
from .models import LifecycleSnapshot

MONTHS = 12


def _requests(rng: random.Random, now: dt.datetime) -> int:
    """About 1 % of active members asked for something in the last two months."""
    ids = list(Member.objects.active().order_by("pk").values_list("pk", flat=True))
    chosen = rng.sample(ids, k=min(len(ids), max(8, len(ids) // 100)))
    statuses = [("received", 4), ("in_progress", 3), ("completed", 6), ("rejected", 1)]
    rows = []
    for pk in chosen:
        received = now - dt.timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
        status = rng.choices([s for s, _ in statuses], weights=[w for _, w in statuses])[0]
        due = received + dt.timedelta(days=15)
        done = status in ("completed", "rejected")
        rows.append(
            DataSubjectRequest(
                member_id=pk,
                kind=rng.choice(DataSubjectRequest.Kind.values),
                status=status,
                received_at=received,
                due_at=due,
                completed_at=min(now, received + dt.timedelta(days=rng.randint(1, 14))) if done else None,
            )  # fmt: skip
        )
    DataSubjectRequest.objects.bulk_create(rows)
    return len(rows)


def seed_dashboard_history(*, seed: int = 42, months: int = MONTHS) -> dict[str, Any]:
    rng = random.Random(seed)
    now = timezone.now()
    month = services.month_start(now)
    wanted = []
    for _ in range(months):
        wanted.append(month)
        month = services.month_start(month - dt.timedelta(days=1))
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        requests = _requests(rng, now)
        for month in reversed(wanted):
            services.take_lifecycle_snapshot(month=month)
    return {"requests": requests, "snapshots": LifecycleSnapshot.objects.count()}

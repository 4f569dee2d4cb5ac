"""The dashboard's reads: one set-based query per figure, whatever the number of members.

A brand's members are the active members (not merged, not erased) with a membership at
one of its stores. ``since`` is inclusive and ``until`` exclusive, both aware datetimes;
weeks start on Monday and months on the 1st, both cut in the current time zone.
Figures described as "now" do not depend on the period.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from consent.models import NO_CHANNEL, Action, ConsentEvent, Purpose
from consent.privacy.models import DataSubjectRequest
from consent.privacy.queries import requests_of_brand
from members.models import Brand, LifecycleStage, Member, Store, StoreMembership
from segments.queries import capture_rate_by_store_month, contactable_counts

from .models import LifecycleCount, LifecycleSnapshot

OPT_IN_ACTIONS = (Action.GRANTED, Action.CONFIRMED)
OPEN_STATUSES = (DataSubjectRequest.Status.RECEIVED, DataSubjectRequest.Status.IN_PROGRESS)


def _local_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


# --- 1. Members by platform and store ------------------------------------------------------


@dataclass(frozen=True)
class StoreMembers:
    store_id: int
    store: str
    platform: str
    members: int
    joined: int  # of them, joined the store within the period


def members_by_store(brand: Brand, since: dt.datetime, until: dt.datetime) -> list[StoreMembers]:
    """Every store of the brand (also those without members) with its active members and
    how many of them joined within the period. One grouped query."""
    active = Q(memberships__member__status=Member.Status.ACTIVE)
    joined = active & Q(memberships__joined_at__gte=since, memberships__joined_at__lt=until)
    rows = (
        Store.objects.filter(brand=brand)
        .annotate(
            members=Count("memberships__member", filter=active, distinct=True),
            joined=Count("memberships__member", filter=joined, distinct=True),
        )
        .order_by("platform", "name", "pk")
        .values_list("pk", "name", "platform", "members", "joined")
    )
    return [StoreMembers(*row) for row in rows]


def members_by_platform(brand: Brand) -> dict[str, int]:
    """Active members per platform, now: a person with two stores on one platform counts once."""
    rows = (
        StoreMembership.objects.filter(store__brand=brand, member__status=Member.Status.ACTIVE)
        .values_list("store__platform")
        .annotate(members=Count("member_id", distinct=True))
        .order_by("store__platform")
    )
    return dict(rows)


# --- 2. People on 1, 2, 3+ platforms ---------------------------------------------------------


def platform_overlap(brand: Brand) -> dict[int, int]:
    """Active members of the brand by the number of its platforms they are members on, now:
    ``{1: …, 2: …, 3: …}`` where 3 means three or more. This is the overlap identity
    resolution found (one person behind store ids on several platforms)."""
    membership, store = StoreMembership._meta.db_table, Store._meta.db_table
    member = Member._meta.db_table
    sql = f"""
        SELECT CASE WHEN per.platforms >= 3 THEN 3 ELSE per.platforms END AS bucket, COUNT(*)
        FROM (
            SELECT sm.member_id, COUNT(DISTINCT s.platform) AS platforms
            FROM {membership} sm
            JOIN {store} s ON s.id = sm.store_id
            JOIN {member} m ON m.id = sm.member_id
            WHERE s.brand_id = %s AND m.status = %s
            GROUP BY sm.member_id
        ) per
        GROUP BY 1
    """  # noqa: S608 - table names only; values are parameters
    counts = {1: 0, 2: 0, 3: 0}
    with connection.cursor() as cursor:
        cursor.execute(sql, [brand.pk, Member.Status.ACTIVE.value])
        for bucket, count in cursor.fetchall():
            counts[int(bucket)] = count
    return counts


# --- 3. Contactable members and the opt-in rate ----------------------------------------------


@dataclass(frozen=True)
class Contactable:
    purpose: str
    purpose_name: str
    channel: str  # "" for purposes without a channel
    members: int


def contactable(brand: Brand) -> list[Contactable]:
    """People the brand may contact now, per active purpose × channel, with the full
    ``can_contact`` rule (``segments.queries.contactable_counts``)."""
    purposes = list(Purpose.objects.filter(brand=brand, is_active=True).order_by("code"))
    counts = contactable_counts(brand, purposes)
    return [
        Contactable(purpose.code, purpose.name, channel, counts[(purpose.code, channel)])
        for purpose in purposes
        for channel in purpose.channels or [NO_CHANNEL]
    ]


@dataclass
class ConsentWeeks:
    """The brand's consent choices per week of the period, from the ledger."""

    weeks: list[dt.date] = field(default_factory=list)
    opt_ins: dict[dt.date, int] = field(default_factory=dict)
    withdrawals: dict[dt.date, dict[str, int]] = field(default_factory=dict)  # week → source type → count

    def opt_in_rate(self, week: dt.date) -> Decimal | None:
        """Opt-ins (granted or confirmed) ÷ all choices (opt-ins and withdrawals) recorded
        for the brand that week, over every purpose and channel; None in a week without
        any choice. Pending double opt-in requests are not choices yet."""
        opt_ins = self.opt_ins.get(week, 0)
        total = opt_ins + sum(self.withdrawals.get(week, {}).values())
        if not total:
            return None
        return (Decimal(opt_ins) / Decimal(total)).quantize(Decimal("0.0001"))

    def withdrawal_sources(self) -> list[str]:
        return sorted({source for by_source in self.withdrawals.values() for source in by_source})


def weeks_between(since: dt.datetime, until: dt.datetime) -> list[dt.date]:
    """The Mondays of every week that overlaps [since, until)."""
    first = _local_date(since)
    first -= dt.timedelta(days=first.weekday())
    last = _local_date(until - dt.timedelta(microseconds=1))
    return [first + dt.timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def consent_weeks(brand: Brand, since: dt.datetime, until: dt.datetime) -> ConsentWeeks:
    """Opt-ins per week and withdrawals per week by source type: one grouped query over
    the ledger's events of the brand that occurred within the period."""
    rows = (
        ConsentEvent.objects.filter(
            brand=brand,
            occurred_at__gte=since,
            occurred_at__lt=until,
            action__in=[*OPT_IN_ACTIONS, Action.WITHDRAWN],
        )
        .annotate(week=TruncWeek("occurred_at"))
        .values_list("week", "action", "source_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    result = ConsentWeeks(weeks=weeks_between(since, until))
    withdrawals: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for week, action, source, n in rows:
        day = _local_date(week)
        if action == Action.WITHDRAWN:
            withdrawals[day][source] = withdrawals[day].get(source, 0) + n
        else:
            result.opt_ins[day] = result.opt_ins.get(day, 0) + n
    result.withdrawals = dict(withdrawals)
    return result


# --- 5. Capture rate ------------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureMonth:
    store_id: int
    month: dt.date
    orders: int
    member_orders: int
    rate: Decimal


def capture_rates(brand: Brand, since: dt.datetime, until: dt.datetime) -> list[CaptureMonth]:
    """Orders by members ÷ all orders per store and month of the period
    (``segments.queries.capture_rate_by_store_month``)."""
    return [
        CaptureMonth(row.store_id, _local_date(row.period), row.orders, row.member_orders, row.rate)
        for row in capture_rate_by_store_month(brand, since=since, until=until)
    ]


# --- 6. Lifecycle ---------------------------------------------------------------------------


def lifecycle_now(brand: Brand) -> dict[str, int]:
    """Active members of the brand per lifecycle stage now (as of the last metrics refresh),
    every stage present."""
    held = StoreMembership.objects.filter(member_id=OuterRef("pk"), store__brand=brand)
    rows = (
        Member.objects.filter(Exists(held), status=Member.Status.ACTIVE)
        .values_list("lifecycle_stage")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(LifecycleStage.values, 0)
    counts.update(rows)
    return counts


@dataclass
class LifecycleHistory:
    months: list[dt.date] = field(default_factory=list)
    # month → stage → members at the start of that month
    distribution: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    # month → (from stage, to stage) → members who moved since the previous snapshot
    moves: dict[dt.date, dict[tuple[str, str], int]] = field(default_factory=dict)

    def moved(self, month: dt.date) -> int:
        return sum(n for (before, after), n in self.moves.get(month, {}).items() if before and before != after)


def lifecycle_history(brand: Brand, since: dt.datetime, until: dt.datetime) -> LifecycleHistory:
    """The monthly snapshots of the months the period touches (``insights.services``): the
    stage distribution at the start of each month and the moves between stages since the
    previous snapshot. One query over the small aggregate table."""
    rows = (
        LifecycleCount.objects.filter(
            brand=brand,
            snapshot__month__gte=_local_date(since).replace(day=1),
            snapshot__month__lt=_local_date(until),
        )
        .values_list("snapshot__month", "from_stage", "to_stage", "members")
        .order_by("snapshot__month")
    )
    history = LifecycleHistory()
    for month, before, after, n in rows:
        if month not in history.distribution:
            history.months.append(month)
            history.distribution[month] = dict.fromkeys(LifecycleStage.values, 0)
            history.moves[month] = {}
        history.distribution[month][after] = history.distribution[month].get(after, 0) + n
        history.moves[month][(before, after)] = n
    return history


def latest_snapshot() -> LifecycleSnapshot | None:
    return LifecycleSnapshot.objects.order_by("-month").first()


# --- 7. Data requests -----------------------------------------------------------------------


def data_requests(brand: Brand, since: dt.datetime, until: dt.datetime, *, now: dt.datetime | None = None) -> dict:
    """The brand's data requests now: open (received or in progress), of them overdue
    (due before now) and due soon (due within ``DASHBOARD_DUE_SOON_DAYS``); and within the
    period: received, and answered (completed or refused). One aggregate query."""
    now = now or timezone.now()
    soon = now + dt.timedelta(days=settings.DASHBOARD_DUE_SOON_DAYS)
    is_open = Q(status__in=OPEN_STATUSES)
    answered = Q(completed_at__isnull=False, completed_at__gte=since, completed_at__lt=until)
    return requests_of_brand(brand).aggregate(
        open=Count("id", filter=is_open),
        overdue=Count("id", filter=is_open & Q(due_at__lt=now)),
        due_soon=Count("id", filter=is_open & Q(due_at__gte=now, due_at__lt=soon)),
        received=Count("id", filter=Q(received_at__gte=since, received_at__lt=until)),
        answered=Count("id", filter=answered),
    )


def timed_parts(brand: Brand, since: dt.datetime, until: dt.datetime) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Each query of the dashboard as a call, for the benchmark's per-query timings."""
    yield "members_by_store", lambda: members_by_store(brand, since, until)
    yield "members_by_platform", lambda: members_by_platform(brand)
    yield "platform_overlap", lambda: platform_overlap(brand)
    yield "contactable", lambda: contactable(brand)
    yield "consent_weeks", lambda: consent_weeks(brand, since, until)
    yield "capture_rates", lambda: capture_rates(brand, since, until)
    yield "lifecycle_now", lambda: lifecycle_now(brand)
    yield "lifecycle_history", lambda: lifecycle_history(brand, since, until)
    yield "data_requests", lambda: data_requests(brand, since, until)

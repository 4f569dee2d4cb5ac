"""The dashboard's reads, each one set-based query whatever the number of members.

Two kinds: the live reads over members, memberships, orders and the ledger (seconds at a
million members) feed ``services.refresh_figures``, which stores their results nightly;
the page reads those stored figures and sums its period out of the daily counts
(``store_months``, ``consent_weeks``, ``lifecycle_history``: milliseconds), plus the live
data-request counts.

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
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth, TruncWeek
from django.utils import timezone

from cdp.db_router import read_connection
from consent.models import NO_CHANNEL, Action, ConsentEvent, ConsentState, Notice, Purpose
from consent.reconsent import STANDING
from members.metrics import counted_orders
from members.models import Brand, LifecycleStage, Member, Store, StoreMembership
from privacy.models import DataSubjectRequest
from privacy.queries import requests_of_brand
from segments.queries import contactable_counts

from .models import BrandFigures, ConsentDay, LifecycleCount, StoreDay

OPT_IN_ACTIONS = (Action.GRANTED, Action.CONFIRMED)
OPEN_STATUSES = (DataSubjectRequest.Status.RECEIVED, DataSubjectRequest.Status.IN_PROGRESS)


def _local_date(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


# --- 1. Members by platform and store ------------------------------------------------------


def members_per_store(brand: Brand) -> dict[int, int]:
    """Active members per store of the brand, now (memberships not ended). One grouped query."""
    rows = (
        StoreMembership.objects.filter(store__brand=brand, member__status=Member.Status.ACTIVE, left_at__isnull=True)
        .values_list("store_id")
        .annotate(members=Count("member_id", distinct=True))
        .order_by()
    )
    return dict(rows)


def members_by_platform(brand: Brand) -> dict[str, int]:
    """Active members per platform, now: a person with two stores on one platform counts once."""
    rows = (
        StoreMembership.objects.filter(store__brand=brand, member__status=Member.Status.ACTIVE, left_at__isnull=True)
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
            WHERE s.brand_id = %s AND m.status = %s AND sm.left_at IS NULL
            GROUP BY sm.member_id
        ) per
        GROUP BY 1
    """  # noqa: S608 - table names only; values are parameters
    counts = {1: 0, 2: 0, 3: 0}
    with read_connection().cursor() as cursor:  # a replica inside replica_reads
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
    """Opt-ins per week and withdrawals per week by source type within the period: one
    grouped query over the brand's daily ledger counts (``ConsentDay``)."""
    rows = (
        ConsentDay.objects.filter(
            brand=brand,
            day__gte=_local_date(since),
            day__lt=_local_date(until),
            action__in=[*OPT_IN_ACTIONS, Action.WITHDRAWN],
        )
        .annotate(week=TruncWeek("day"))
        .values_list("week", "action", "source_type")
        .annotate(n=Sum("events"))
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


def consent_days(brand: Brand, until: dt.datetime) -> list[ConsentDay]:
    """The brand's consent events per local day, action and source type before ``until``,
    from the ledger: what ``ConsentDay`` stores. One grouped query."""
    rows = (
        ConsentEvent.objects.filter(brand=brand, occurred_at__lt=until)
        .annotate(day=TruncDate("occurred_at"))
        .values_list("day", "action", "source_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        ConsentDay(brand=brand, day=day, action=action, source_type=source, events=n) for day, action, source, n in rows
    ]


# --- 5. Capture rate (and joins per store) -------------------------------------------------


@dataclass(frozen=True)
class StoreMonth:
    store_id: int
    month: dt.date
    joined: int
    orders: int
    member_orders: int

    @property
    def rate(self) -> Decimal | None:
        """Orders by members ÷ all orders; None in a month without orders."""
        if not self.orders:
            return None
        return (Decimal(self.member_orders) / Decimal(self.orders)).quantize(Decimal("0.0001"))


def store_months(brand: Brand, since: dt.datetime, until: dt.datetime) -> list[StoreMonth]:
    """Per store of the brand and month of the period: memberships that began, orders and
    orders by members. One grouped query over the daily counts (``StoreDay``)."""
    rows = (
        StoreDay.objects.filter(store__brand=brand, day__gte=_local_date(since), day__lt=_local_date(until))
        .annotate(month=TruncMonth("day"))
        .values_list("store_id", "month")
        .annotate(joined=Sum("joined"), orders=Sum("orders"), member_orders=Sum("member_orders"))
        .order_by("store_id", "month")
    )
    return [StoreMonth(store, _local_date(month), *sums) for store, month, *sums in rows]


def store_days(brand: Brand, until: dt.datetime) -> list[StoreDay]:
    """Per store of the brand and local day before ``until``: memberships of active members
    that began (by the store's join time), orders and orders by members; what ``StoreDay``
    stores. Two grouped queries (orders, memberships)."""
    days: dict[tuple[int, dt.date], StoreDay] = {}

    def row(store_id: int, day: dt.date) -> StoreDay:
        return days.setdefault((store_id, day), StoreDay(store_id=store_id, day=day))

    orders = (
        counted_orders()  # not cancelled or refunded (members.metrics), as in the capture rate
        .filter(store__brand=brand, placed_at__lt=until)
        .annotate(day=TruncDate("placed_at"))
        .values_list("store_id", "day")
        .annotate(orders=Count("id"), member_orders=Count("id", filter=Q(member__isnull=False)))
        .order_by()
    )
    for store_id, day, n, by_members in orders:
        figures = row(store_id, day)
        figures.orders, figures.member_orders = n, by_members
    joins = (
        StoreMembership.objects.filter(
            store__brand=brand, member__status=Member.Status.ACTIVE, joined_at__isnull=False, joined_at__lt=until
        )
        .annotate(day=TruncDate("joined_at"))
        .values_list("store_id", "day")
        .annotate(joined=Count("member_id", distinct=True))
        .order_by()
    )
    for store_id, day, n in joins:
        row(store_id, day).joined = n
    return list(days.values())


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


# --- 7. Re-consent after a notice changed ----------------------------------------------------


@dataclass(frozen=True)
class VersionRate:
    version: int
    people: int  # whose standing consent rests on this version
    share: float  # of the people standing on any version of the notice (0 to 1)


@dataclass(frozen=True)
class NoticeReconsent:
    """One notice (a brand's kind × purpose, every language) whose newest version replaced
    an older one: those who stand on older versions are to be asked again. ``notice_id``
    is a row of the newest version, for the admin's "who consented under an earlier
    version" page."""

    notice_id: int
    kind: str
    purpose_name: str  # "" for a privacy policy or member agreement
    people: int  # standing on some version (one person on two versions counts once)
    versions: list[VersionRate]  # oldest first

    @property
    def newest(self) -> VersionRate:
        return self.versions[-1]


def reconsent_rates(brand: Brand) -> list[NoticeReconsent]:
    """Per notice of the brand with a second version or later, per version: the people
    whose standing consent (granted or confirmed) rests on it and their share, as
    ``consent.reconsent.by_version`` counts one notice, for every notice at once: three
    grouped queries (the notices, the people per version, the people per notice) whatever
    the number of notices and members."""
    notices = list(
        Notice.objects.filter(brand=brand)
        .values_list("pk", "kind", "purpose_id", "purpose__name", "version")
        .order_by("kind", "purpose__code", "version", "pk")
    )
    chains: dict[tuple[str, int | None], dict[str, Any]] = {}
    for pk, kind, purpose_id, purpose_name, version in notices:
        chain = chains.setdefault((kind, purpose_id), {"name": purpose_name or "", "versions": {}})
        chain["versions"].setdefault(version, pk)  # the first row of each version
    chains = {key: chain for key, chain in chains.items() if max(chain["versions"]) >= 2}
    if not chains:
        return []
    standing = ConsentState.objects.filter(brand=brand, action__in=STANDING, event__notice__brand=brand).order_by()
    per_version = {
        (row["event__notice__kind"], row["event__notice__purpose_id"], row["event__notice__version"]): row["people"]
        for row in standing.values(
            "event__notice__kind", "event__notice__purpose_id", "event__notice__version"
        ).annotate(people=Count("member_id", distinct=True))
    }
    per_chain = {
        (row["event__notice__kind"], row["event__notice__purpose_id"]): row["people"]
        for row in standing.values("event__notice__kind", "event__notice__purpose_id").annotate(
            people=Count("member_id", distinct=True)
        )
    }
    found = []
    for (kind, purpose_id), chain in chains.items():
        total = per_chain.get((kind, purpose_id), 0)
        versions = sorted(chain["versions"])
        found.append(
            NoticeReconsent(
                notice_id=chain["versions"][versions[-1]],
                kind=kind,
                purpose_name=chain["name"],
                people=total,
                versions=[
                    VersionRate(v, n := per_version.get((kind, purpose_id, v), 0), n / total if total else 0.0)
                    for v in versions
                ],
            )
        )
    return found


def stored_figures(brand: Brand) -> BrandFigures | None:
    return BrandFigures.objects.filter(brand=brand).first()


def timed_parts(brand: Brand, since: dt.datetime, until: dt.datetime) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Each read of the dashboard page as a call, then each computation of the refresh,
    for the benchmark's per-query timings."""
    yield "page: stored_figures", lambda: stored_figures(brand)
    yield "page: stores", lambda: list(Store.objects.filter(brand=brand))
    yield "page: store_months", lambda: store_months(brand, since, until)
    yield "page: consent_weeks", lambda: consent_weeks(brand, since, until)
    yield "page: lifecycle_history", lambda: lifecycle_history(brand, since, until)
    yield "page: data_requests", lambda: data_requests(brand, since, until)
    yield "refresh: members_per_store", lambda: members_per_store(brand)
    yield "refresh: members_by_platform", lambda: members_by_platform(brand)
    yield "refresh: platform_overlap", lambda: platform_overlap(brand)
    yield "refresh: contactable", lambda: contactable(brand)
    yield "refresh: lifecycle_now", lambda: lifecycle_now(brand)
    yield "refresh: store_days", lambda: store_days(brand, until)
    yield "refresh: consent_days", lambda: consent_days(brand, until)
    yield "refresh: reconsent_rates", lambda: reconsent_rates(brand)

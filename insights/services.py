"""Writes of the insights app: the monthly lifecycle snapshot behind the dashboard's
"movement month over month"."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from cdp.db_router import replica_reads
from members.metrics import counted_orders_sql, stage_params, stage_sql
from members.models import Brand, LifecycleStage, Member, Order, Store, StoreMembership

from . import queries
from .models import BrandFigures, ConsentDay, LifecycleCount, LifecycleSnapshot, MemberStage, StoreDay

_CURRENT = "insights_current_stage"


def month_start(moment: dt.datetime | dt.date) -> dt.date:
    """The first day of ``moment``'s month in the current time zone."""
    if isinstance(moment, dt.datetime):
        moment = timezone.localtime(moment).date()
    return moment.replace(day=1)


def month_start_moment(month: dt.date) -> dt.datetime:
    """Midnight of ``month``'s first day in the current time zone."""
    return timezone.make_aware(dt.datetime.combine(month_start(month), dt.time.min))


class SnapshotOutOfOrder(ValueError):
    """A snapshot older than the latest one: its movement would compare with the future."""


@transaction.atomic
def take_lifecycle_snapshot(*, month: dt.date | None = None) -> LifecycleSnapshot:
    """Record every active member's lifecycle stage as of the first moment of ``month``
    (default: the current month) and, per brand, how many moved from each stage at the
    previous snapshot to each stage now. A person counts for a brand from the moment they
    joined one of its stores (the store's join time, else when we recorded the membership).

    Stages are computed from orders placed before that moment with the same rule as the
    nightly metrics refresh (``members.metrics.stage_sql``), so a missed month can be taken
    later, and past months can be filled in order (the demo does). Idempotent: a month
    already taken is returned as it is. A month before the latest one is refused.

    Cost: one aggregate over orders and two writes of one row per member, once a month,
    whatever the number of members (set-based; the rows never pass through Python).
    """
    month = month_start(month or timezone.now())
    # One snapshot at a time: the row lock on the newest snapshot orders concurrent runs.
    latest = LifecycleSnapshot.objects.select_for_update().order_by("-month").first()
    if latest is not None and latest.month == month:
        return latest
    if latest is not None and latest.month > month:
        raise SnapshotOutOfOrder(f"{month:%Y-%m} is older than the latest snapshot ({latest.month:%Y-%m})")
    existing = LifecycleSnapshot.objects.filter(month=month).first()
    if existing is not None:
        return existing
    as_of = month_start_moment(month)
    snapshot = LifecycleSnapshot.objects.create(month=month)
    params = {
        **stage_params(as_of),
        "active": Member.Status.ACTIVE.value,
        "prospect": LifecycleStage.PROSPECT.value,
        "snapshot": snapshot.pk,
    }
    member, order = Member._meta.db_table, Order._meta.db_table
    membership, store = StoreMembership._meta.db_table, Store._meta.db_table
    counts, stages = LifecycleCount._meta.db_table, MemberStage._meta.db_table
    # Only table names and fixed SQL are interpolated; every value is a parameter.
    statements = [
        (f"DROP TABLE IF EXISTS {_CURRENT}", None),
        (
            f"""
            CREATE TEMPORARY TABLE {_CURRENT} AS
            SELECT m.id AS member_id,
                   CASE WHEN agg.member_id IS NULL THEN %(prospect)s ELSE {stage_sql()} END AS stage
            FROM {member} m
            LEFT JOIN (
                SELECT o.member_id, COUNT(*) AS order_count, MIN(o.placed_at) AS first_order_at,
                       MAX(o.placed_at) AS last_order_at,
                       SUM(CASE WHEN o.placed_at >= %(loyal_since)s THEN 1 ELSE 0 END) AS recent_orders
                FROM {order} o
                WHERE o.member_id IS NOT NULL AND o.placed_at < %(now)s {counted_orders_sql("o")}
                GROUP BY o.member_id
            ) agg ON agg.member_id = m.id
            WHERE m.status = %(active)s
              AND EXISTS (SELECT 1 FROM {membership} sm
                          WHERE sm.member_id = m.id AND COALESCE(sm.joined_at, sm.created_at) < %(now)s)
            """,  # noqa: S608
            params,
        ),
        (
            f"""
            INSERT INTO {counts} (snapshot_id, brand_id, from_stage, to_stage, members)
            SELECT %(snapshot)s, held.brand_id, COALESCE(prev.stage, ''), cur.stage, COUNT(*)
            FROM {_CURRENT} cur
            JOIN (SELECT DISTINCT sm.member_id, s.brand_id
                  FROM {membership} sm JOIN {store} s ON s.id = sm.store_id
                  WHERE COALESCE(sm.joined_at, sm.created_at) < %(now)s) held
              ON held.member_id = cur.member_id
            LEFT JOIN {stages} prev ON prev.member_id = cur.member_id
            GROUP BY held.brand_id, COALESCE(prev.stage, ''), cur.stage
            """,  # noqa: S608
            params,
        ),
        # PostgreSQL: TRUNCATE (transactional there) leaves no million dead rows behind for
        # the next month's join to wade through; SQLite's unqualified DELETE is its truncate.
        (f"TRUNCATE {stages}" if connection.vendor == "postgresql" else f"DELETE FROM {stages}", None),  # noqa: S608
        (f"INSERT INTO {stages} (member_id, stage) SELECT member_id, stage FROM {_CURRENT}", None),  # noqa: S608
        (f"SELECT COUNT(*) FROM {_CURRENT}", None),  # noqa: S608
    ]
    with connection.cursor() as cursor:
        for sql, values in statements:
            cursor.execute(sql, values)
        snapshot.members = cursor.fetchone()[0]
        cursor.execute(f"DROP TABLE {_CURRENT}")
    snapshot.save(update_fields=["members"])
    return snapshot


def refresh_figures(*, brand: Brand, now: dt.datetime | None = None) -> BrandFigures:
    """Recompute what the dashboard reads for ``brand``: the figures that do not depend on
    the period (``BrandFigures``) and the daily counts per store (``StoreDay``) and of the
    ledger (``ConsentDay``) up to ``now``, from which any period's figures are sums.

    A handful of grouped queries over members, memberships, orders and the ledger (about
    a minute at a million members; see bench/dashboard), run outside any transaction, then
    a few thousand aggregate rows replaced in one short transaction. Readers see the old
    figures until it commits; of two refreshes of one brand the last to write wins. The
    brand row is locked FOR NO KEY UPDATE only, which consent events, orders and stores
    referencing the brand do not wait for.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    # The heavy part, on a read replica when there is one (counts, never a contact decision).
    with replica_reads():
        data = {
            "members": {str(pk): n for pk, n in queries.members_per_store(brand).items()},
            "platforms": queries.members_by_platform(brand),
            "overlap": {str(k): n for k, n in queries.platform_overlap(brand).items()},
            "contactable": [dataclasses.astuple(c) for c in queries.contactable(brand)],
            "lifecycle": queries.lifecycle_now(brand),
            "reconsent": [dataclasses.asdict(n) for n in queries.reconsent_rates(brand)],
        }
        days = queries.store_days(brand, now)
        ledger = queries.consent_days(brand, now)
    with transaction.atomic():
        Brand.objects.select_for_update(no_key=True).filter(pk=brand.pk).first()
        StoreDay.objects.filter(store__brand=brand).delete()
        StoreDay.objects.bulk_create(days, batch_size=2000)
        ConsentDay.objects.filter(brand=brand).delete()
        ConsentDay.objects.bulk_create(ledger, batch_size=2000)
        figures, _ = BrandFigures.objects.update_or_create(
            brand=brand, defaults={"computed_at": now, "data": data, "seconds": time.perf_counter() - started}
        )
        transaction.on_commit(lambda: new_generation(brand.pk))
    return figures


def claim_refresh(brand: Brand) -> bool:
    """Whether a refresh of ``brand`` may start now: False while one started less than
    ``DASHBOARD_REFRESH_SECONDS`` ago. A refresh reads every member, membership and
    ledger event of the brand (about a minute of database time at a million members), so
    repeated clicks of the button start one, not one each."""
    return cache.add(f"insights:dashboard:refresh:{brand.pk}", 1, timeout=settings.DASHBOARD_REFRESH_SECONDS)


def generation_key(brand_id: int) -> str:
    return f"insights:dashboard:generation:{brand_id}"


def new_generation(brand_id: int) -> None:
    """Make every cached dashboard page of the brand stale (see ``figures.cache_key``)."""
    key = generation_key(brand_id)
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=None)


def refresh_dashboard(*, now: dt.datetime | None = None) -> LifecycleSnapshot:
    """What the nightly refresh does for the dashboard: every brand's figures, and this
    month's lifecycle snapshot when it is not taken yet (the first night of a month)."""
    now = now or timezone.now()
    for brand in Brand.objects.order_by("pk"):
        refresh_figures(brand=brand, now=now)
    return take_lifecycle_snapshot(month=month_start(now))

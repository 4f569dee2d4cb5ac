"""Member metrics: order count, spend, first and last order, lifecycle stage.

Set-based: two UPDATE statements whatever the number of members, never a Python loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import LifecycleStage, Member, Order


def stage_sql() -> str:
    """The lifecycle stage as a SQL CASE over a row ``agg`` with ``order_count``,
    ``first_order_at``, ``last_order_at`` and ``recent_orders`` (orders in the loyalty
    window), taking the parameters of :func:`stage_params`. Also used by the monthly
    lifecycle snapshots of the dashboard, so both agree on what each stage means."""
    return f"""
        CASE
          WHEN agg.order_count = 0 THEN '{LifecycleStage.PROSPECT}'
          WHEN agg.first_order_at >= %(new_since)s THEN '{LifecycleStage.NEW}'
          WHEN agg.last_order_at >= %(active_since)s AND agg.recent_orders >= %(loyal_min)s
            THEN '{LifecycleStage.LOYAL}'
          WHEN agg.last_order_at >= %(active_since)s THEN '{LifecycleStage.ACTIVE}'
          WHEN agg.last_order_at >= %(at_risk_since)s THEN '{LifecycleStage.AT_RISK}'
          ELSE '{LifecycleStage.LAPSED}'
        END"""


def stage_params(now: dt.datetime) -> dict[str, Any]:
    """The thresholds of :func:`stage_sql` as of ``now`` (settings ``LIFECYCLE_*``)."""
    ops = connection.ops
    return {
        "now": ops.adapt_datetimefield_value(now),
        "new_since": ops.adapt_datetimefield_value(now - dt.timedelta(days=settings.LIFECYCLE_NEW_DAYS)),
        "active_since": ops.adapt_datetimefield_value(now - dt.timedelta(days=settings.LIFECYCLE_ACTIVE_DAYS)),
        "at_risk_since": ops.adapt_datetimefield_value(now - dt.timedelta(days=settings.LIFECYCLE_AT_RISK_DAYS)),
        "loyal_since": ops.adapt_datetimefield_value(now - dt.timedelta(days=settings.LIFECYCLE_LOYAL_WINDOW_DAYS)),
        "loyal_min": settings.LIFECYCLE_LOYAL_MIN_ORDERS,
    }


NOT_COUNTED = (Order.Status.CANCELLED.value, Order.Status.REFUNDED.value)


def counted_orders() -> QuerySet[Order]:
    """The orders that count (``counted_orders_sql`` as a queryset): for segment rules and
    the capture rate, so they agree with the metrics and the lifecycle stage."""
    if settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE:
        return Order.objects.all()
    return Order.objects.exclude(status__in=NOT_COUNTED)


def counted_orders_sql(alias: str = "o") -> str:
    """A ``WHERE`` condition (starting with ``AND``, or empty) keeping the orders that count
    for metrics and lifecycle: cancelled and refunded ones only if the setting
    ``ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE`` says so. Fixed SQL, no parameters."""
    if settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE:
        return ""
    listed = ", ".join(f"'{status}'" for status in NOT_COUNTED)
    return f"AND {alias}.status NOT IN ({listed})"


def refresh_member_metrics(*, member_ids: Sequence[int] | None = None, now: dt.datetime | None = None) -> int:
    """Recompute order count, spend, first/last order and lifecycle stage.

    Two set-based statements whatever the number of members: one UPDATE … FROM an
    aggregate of orders for members who have any, one for members who have none (any
    longer). Rows whose values would not change are not written. Returns rows written.
    """
    now = now or timezone.now()
    member_table = Member._meta.db_table
    order_table = Order._meta.db_table
    params: dict[str, Any] = {
        **stage_params(now),
        "merged": Member.Status.MERGED.value,
        "prospect": LifecycleStage.PROSPECT.value,
    }
    scope_orders = scope_members = ""
    if member_ids is not None:
        ids = [int(pk) for pk in member_ids]
        if not ids:
            return 0
        placeholders = ", ".join(f"%(id{i})s" for i in range(len(ids)))
        params.update({f"id{i}": pk for i, pk in enumerate(ids)})
        scope_orders = f"AND o.member_id IN ({placeholders})"
        scope_members = f"AND m.id IN ({placeholders})"
    counted = counted_orders_sql("o")
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    # Only table names and fixed SQL are interpolated; every value is a parameter.
    with_orders = f"""
        UPDATE {member_table} AS m SET
          order_count = agg.order_count,
          total_spent = agg.total_spent,
          first_order_at = agg.first_order_at,
          last_order_at = agg.last_order_at,
          lifecycle_stage = agg.stage,
          metrics_refreshed_at = %(now)s
        FROM (
          SELECT agg.*, {stage_sql()} AS stage FROM (
            SELECT o.member_id,
                   COUNT(*) AS order_count,
                   SUM(o.amount) AS total_spent,
                   MIN(o.placed_at) AS first_order_at,
                   MAX(o.placed_at) AS last_order_at,
                   SUM(CASE WHEN o.placed_at >= %(loyal_since)s THEN 1 ELSE 0 END) AS recent_orders
            FROM {order_table} o
            WHERE o.member_id IS NOT NULL {scope_orders} {counted}
            GROUP BY o.member_id
          ) agg
        ) agg
        WHERE m.id = agg.member_id
          AND (m.order_count {distinct} agg.order_count
               OR m.total_spent {distinct} agg.total_spent
               OR m.first_order_at {distinct} agg.first_order_at
               OR m.last_order_at {distinct} agg.last_order_at
               OR m.lifecycle_stage {distinct} agg.stage)
    """  # noqa: S608
    without_orders = f"""
        UPDATE {member_table} AS m SET
          order_count = 0, total_spent = 0, first_order_at = NULL, last_order_at = NULL,
          lifecycle_stage = %(prospect)s, metrics_refreshed_at = %(now)s
        WHERE (m.order_count <> 0 OR m.lifecycle_stage <> %(prospect)s OR m.last_order_at IS NOT NULL)
          {scope_members}
          AND NOT EXISTS (SELECT 1 FROM {order_table} o WHERE o.member_id = m.id {counted})
    """  # noqa: S608
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(with_orders, params)
        written += max(cursor.rowcount, 0)
        cursor.execute(without_orders, params)
        written += max(cursor.rowcount, 0)
    return written

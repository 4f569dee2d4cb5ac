"""⚑ Brand wall: a person as one brand sees them.

OneID links a person across the brands of a group, but each brand is a separate
controller: what its API key, webhooks and exports get is only what it collected. Its
stores' memberships (with the profile values each store's records gave,
``StoreMembership.profile``) and its stores' orders; never the golden record's values,
which mix what every brand collected. A person another brand also knows looks exactly
like one only this brand knows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.utils import timezone

from .metrics import counted_orders_sql, stage_params, stage_sql
from .models import LifecycleStage, Member, Order, Store, StoreMembership

_DATES = ("birth_date",)


def brand_profile(memberships: Iterable[StoreMembership]) -> dict[str, Any]:
    """The profile the brand's stores gave (``memberships``: the person's memberships at
    them): each field from the most recently observed store that has it, blank if none."""
    profile: dict[str, Any] = dict.fromkeys(Member.PROFILE_FIELDS, "")
    profile["birth_date"] = None
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    for membership in sorted(memberships, key=lambda m: (m.profile_observed_at or epoch, m.pk)):
        for name, value in (membership.profile or {}).items():
            if name in profile and value not in (None, ""):
                profile[name] = dt.date.fromisoformat(value) if name in _DATES else value
    return profile


_NO_ORDERS = {
    "order_count": 0,
    "total_spent": 0,
    "first_order_at": None,
    "last_order_at": None,
    "lifecycle_stage": LifecycleStage.PROSPECT.value,
}


def brand_order_metrics(member_ids: Sequence[int], brand_id: int) -> dict[int, dict[str, Any]]:
    """Order count, spend, first and last order and lifecycle stage of these members from
    the brand's stores' orders only, by the same stage rule as ``refresh_member_metrics``.
    One query."""
    if not member_ids:
        return {}
    params: dict[str, Any] = {**stage_params(timezone.now()), "brand": brand_id}
    placeholders = ", ".join(f"%(id{i})s" for i in range(len(member_ids)))
    params.update({f"id{i}": int(pk) for i, pk in enumerate(member_ids)})
    sql = f"""
        SELECT agg.member_id, agg.order_count, agg.total_spent, agg.first_order_at, agg.last_order_at,
               {stage_sql()} AS stage
        FROM (
          SELECT o.member_id, COUNT(*) AS order_count, SUM(o.amount) AS total_spent,
                 MIN(o.placed_at) AS first_order_at, MAX(o.placed_at) AS last_order_at,
                 SUM(CASE WHEN o.placed_at >= %(loyal_since)s THEN 1 ELSE 0 END) AS recent_orders
          FROM {Order._meta.db_table} o JOIN {Store._meta.db_table} s ON s.id = o.store_id
          WHERE s.brand_id = %(brand)s AND o.member_id IN ({placeholders}) {counted_orders_sql("o")}
          GROUP BY o.member_id
        ) agg
    """  # noqa: S608 - table names and placeholders only; values are parameters
    order_field = Order._meta.get_field("placed_at")
    amount_field = Order._meta.get_field("amount")
    metrics = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for member_id, count, spent, first, last, stage in cursor.fetchall():
            metrics[member_id] = {
                "order_count": count,
                "total_spent": amount_field.to_python(spent),
                "first_order_at": _datetime(order_field, first),
                "last_order_at": _datetime(order_field, last),
                "lifecycle_stage": stage,
            }
    return metrics


def _datetime(field: Any, value: Any) -> dt.datetime | None:
    """A datetime aggregate as the ORM would return it (SQLite gives text)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = field.to_python(value)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


def brand_views(members: Sequence[Member], brand_id: int) -> list[dict[str, Any]]:
    """``members`` (each with ``brand_memberships`` prefetched: its memberships at the
    brand's stores) as the brand sees them, in the shape of the API's member output.
    ``created_at`` and ``updated_at`` are the brand's own: its first membership, its last
    change to one."""
    metrics = brand_order_metrics([m.pk for m in members], brand_id)
    views = []
    for member in members:
        memberships = list(member.brand_memberships)
        views.append(
            {
                "id": member.pk,
                "status": member.status,
                **brand_profile(memberships),
                **metrics.get(member.pk, _NO_ORDERS),
                "brand_memberships": memberships,
                "created_at": min((m.created_at for m in memberships), default=member.created_at),
                "updated_at": max((m.updated_at for m in memberships), default=member.updated_at),
            }
        )
    return views


def brand_columns(member_ids: Sequence[int], brand_id: int) -> dict[int, dict[str, Any]]:
    """For lists and files (segment exports and reads): each member's brand profile and
    brand order metrics by id. Two queries whatever the number of members."""
    memberships: dict[int, list[StoreMembership]] = {pk: [] for pk in member_ids}
    for membership in StoreMembership.objects.filter(member_id__in=member_ids, store__brand_id=brand_id).only(
        "pk", "member_id", "profile", "profile_observed_at"
    ):
        memberships[membership.member_id].append(membership)
    metrics = brand_order_metrics(member_ids, brand_id)
    return {pk: {**brand_profile(rows), **metrics.get(pk, _NO_ORDERS)} for pk, rows in memberships.items()}

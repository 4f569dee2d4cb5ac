"""Reads worth naming: member lookup by any identifier, never-merge pairs, capture rate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek

from .identities import RecordError, normalize_email, normalize_phone
from .metrics import counted_orders
from .models import Identity, IdentityKind, Member, NeverMerge, Store

_TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def canonical_member(member: Member) -> Member:
    """Follow ``merged_into`` to the member that now holds this person's data."""
    seen = set()
    while member.merged_into_id is not None and member.pk not in seen:
        seen.add(member.pk)
        member = member.merged_into
    return member


def never_merge_pairs(member_ids: Collection[int]) -> dict[frozenset[int], NeverMerge]:
    """The never-merge pairs between ``member_ids`` (canonical members), keyed by the two
    canonical members they keep apart: a pair names the members an unmerge split, either
    of which may have been merged into someone since. A member's canonical record is one
    hop away (``merges._move_records`` keeps it so), hence COALESCE(merged_into_id, id)."""
    ids = list(member_ids)
    if len(ids) < 2:
        return {}
    pairs = (
        NeverMerge.objects.annotate(
            canonical_a=Coalesce("member_a__merged_into_id", "member_a_id"),
            canonical_b=Coalesce("member_b__merged_into_id", "member_b_id"),
        )
        .filter(canonical_a__in=ids, canonical_b__in=ids)
        .order_by("pk")
    )
    found: dict[frozenset[int], NeverMerge] = {}
    for pair in pairs:
        key = frozenset((pair.canonical_a, pair.canonical_b))
        if len(key) == 2:
            found.setdefault(key, pair)
    return found


def members_matching(term: str) -> QuerySet[Member]:
    """Members whose phone (any format), e-mail, unionid or store member id is ``term``."""
    term = term.strip()
    values: list[tuple[str, str]] = []
    with suppress(RecordError):
        values.append((IdentityKind.PHONE, normalize_phone(term)))
    if "@" in term:
        with suppress(RecordError):
            values.append((IdentityKind.EMAIL, normalize_email(term)))
    values.append((IdentityKind.WECHAT_UNIONID, term))
    q = Q()
    for kind, value in values:
        q |= Q(kind=kind, value=value)
    # Store member ids are scoped by store: match the id at any store.
    q |= Q(kind=IdentityKind.STORE_MEMBER, value__endswith=f":{term}")
    return Member.objects.filter(pk__in=Identity.objects.filter(q).values("member_id"))


@dataclass(frozen=True)
class CaptureRate:
    store_id: int
    period: dt.date | dt.datetime
    orders: int
    member_orders: int

    @property
    def guest_orders(self) -> int:
        return self.orders - self.member_orders

    @property
    def rate(self) -> Decimal:
        if not self.orders:
            return Decimal(0)
        return (Decimal(self.member_orders) / Decimal(self.orders)).quantize(Decimal("0.0001"))


def capture_rate(
    *,
    stores: QuerySet[Store] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    period: str = "month",
) -> list[CaptureRate]:
    """Orders by members ÷ all orders, per store and period (day, week or month), of the
    orders that count (``metrics.counted_orders``: not cancelled or refunded by default).

    One grouped query; periods are cut in the current time zone.
    """
    if period not in _TRUNC:
        raise ValueError(f"period must be one of {', '.join(_TRUNC)}, not {period!r}")
    orders = counted_orders()
    if stores is not None:
        orders = orders.filter(store__in=stores)
    if since is not None:
        orders = orders.filter(placed_at__gte=since)
    if until is not None:
        orders = orders.filter(placed_at__lt=until)
    rows = (
        orders.annotate(period=_TRUNC[period]("placed_at"))
        .values("store_id", "period")
        .annotate(orders=Count("id"), member_orders=Count("id", filter=Q(member__isnull=False)))
        .order_by("store_id", "period")
    )
    return [CaptureRate(**row) for row in rows]

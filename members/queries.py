"""Reads worth naming: member lookup by any identifier, never-merge pairs, capture rate, the
API's member read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connections
from django.db.models import Count, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek

from .identities import RecordError, normalize_email, normalize_phone
from .metrics import counted_orders
from .models import Identity, IdentityKind, Member, NeverMerge, Store, StoreMembership

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
    return Member.objects.filter(pk__in=identities_matching(term).values("member_id"))


def identities_matching(term: str) -> QuerySet[Identity]:
    """Identities that are ``term``: a phone in any format, an e-mail, a unionid or a store
    member id at any store."""
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
    return Identity.objects.filter(q)


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


# --- The API's member read ---------------------------------------------------------------
# Its one statement, compiled once per process: the SQL, its parameters with a slot where
# each call's brand and member id go, and the compiler that turns rows into values.
_READ_FIELDS = (
    "pk", "store_member_id", "joined_at", "tier", "points", "profile", "profile_observed_at", "created_at",
    "updated_at", "store_id", "store__code", "member_id", "member__status", "member__created_at",
    "member__updated_at",
)  # fmt: skip
_READ_SENTINELS = {"brand": -7_100_001, "member": -7_100_002}


class _Slot(str):
    """Names a per-request parameter of the compiled member read."""


_read_compiled: dict[str, tuple[str, list[Any], Any]] = {}


def _read_statement(alias: str) -> tuple[str, list[Any], Any]:
    if alias not in _read_compiled:
        canonical = Member.objects.filter(pk=_READ_SENTINELS["member"]).values(ref=Coalesce("merged_into_id", "pk"))
        rows = (
            StoreMembership.objects.using(alias)
            .filter(store__brand_id=_READ_SENTINELS["brand"], member_id=Subquery(canonical))
            .exclude(member__status=Member.Status.ERASED)
            .values_list(*_READ_FIELDS)
        )
        compiler = rows.query.get_compiler(alias)
        sql, params = compiler.as_sql()
        slots = {value: _Slot(name) for name, value in _READ_SENTINELS.items()}
        missing = set(slots) - set(params)
        if missing:  # a sentinel the ORM folded into the SQL would give another member's data
            raise RuntimeError(f"member read: parameters {missing} not found in {params}")
        _read_compiled[alias] = (sql, [slots.get(p, p) if isinstance(p, int) else p for p in params], compiler)
    return _read_compiled[alias]


def brand_member_read(brand_id: int, member_id: int) -> Member | None:
    """The member ``member_id`` (or the one it was merged into) as the API's member read
    needs it, if the brand knows the person and they are not erased: ``pk``, ``status``,
    ``created_at``, ``updated_at`` and ``brand_memberships`` (its memberships at the
    brand's stores, each with its store's code), as ``brand_views`` takes it. What the
    API's ``member_for_key`` finds in two queries, in one, compiled once per process: the
    hot read paid more for building and compiling the ORM query than for running it."""
    if not 0 < member_id < 2**63:
        return None
    values = {"brand": brand_id, "member": member_id}
    sql, params, compiler = _read_statement(StoreMembership.objects.db)
    with connections[compiler.using].cursor() as cursor:
        cursor.execute(sql, [values[p] if isinstance(p, _Slot) else p for p in params])
        found = cursor.fetchall()
    if not found:
        return None
    memberships = []
    for row in compiler.results_iter(results=[found], tuple_expected=True):
        item = dict(zip(_READ_FIELDS, row, strict=True))
        membership = StoreMembership(
            pk=item["pk"], store_member_id=item["store_member_id"], joined_at=item["joined_at"], tier=item["tier"],
            points=item["points"], profile=item["profile"], profile_observed_at=item["profile_observed_at"],
            created_at=item["created_at"], updated_at=item["updated_at"], member_id=item["member_id"],
        )  # fmt: skip
        membership.store = Store(pk=item["store_id"], code=item["store__code"])
        memberships.append(membership)
    member = Member(
        pk=item["member_id"], status=item["member__status"], created_at=item["member__created_at"],
        updated_at=item["member__updated_at"],
    )  # fmt: skip
    member.brand_memberships = memberships
    return member

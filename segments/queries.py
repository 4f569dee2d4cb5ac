"""Reads worth naming: the funnel's conditions, snapshots, contactable counts, capture rate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from consent.models import NO_CHANNEL, Channel, DataUsage, Preference, Purpose
from consent.queries import consent_q, reachable_q
from members.models import Brand, Identity, IdentityKind, Member, Store
from members.queries import CaptureRate, capture_rate

from .models import ContactLog, Segment, SegmentExport, SegmentMember, default_max_per_week
from .rules import Context, compile_rules

CAP_WINDOW = dt.timedelta(days=7)
EXPORT_CONTEXT = "segment_export"


def under_cap_q(brand_id: int, now: dt.datetime | None = None) -> Q:
    """Members who have not reached their weekly message limit with this brand: their own
    preference, else the brand's default (``ContactPolicy`` or ``CONTACT_DEFAULT_MAX_PER_WEEK``).
    Sends on every channel count. One grouped subquery, no per-member loop."""
    now = now or timezone.now()
    own = Preference.objects.filter(member=OuterRef("member_id"), brand_id=brand_id).values("max_per_week")[:1]
    default = default_max_per_week(brand_id)
    cap = Coalesce(Subquery(own), Value(default)) if default else Subquery(own)
    over = (
        ContactLog.objects.filter(brand_id=brand_id, sent_at__gte=now - CAP_WINDOW)
        .values("member_id")
        .annotate(sent=Count("id"))
        .filter(sent__gte=cap)
        .values("member_id")
    )
    wants_none = Preference.objects.filter(brand_id=brand_id, max_per_week=0).values("member_id")
    return ~Q(pk__in=over) & ~Q(pk__in=wants_none)


def funnel_conditions(segment: Segment, rules: dict[str, Any], now: dt.datetime) -> list[tuple[str, Q]]:
    """The funnel's steps as cumulative conditions on Member, in order (DESIGN.md):
    matched by rules → with consent (``consent_q``, the set-based ``can_contact``) → under the
    frequency cap → reachable on the channel (contact point, not suppressed)."""
    ctx = Context.for_brand(segment.brand_id, now)
    matched = compile_rules(rules, ctx)
    consented = matched & consent_q(segment.brand_id, segment.purpose, segment.channel)
    under_cap = consented & under_cap_q(segment.brand_id, now)
    reachable = under_cap & reachable_q(segment.brand_id, segment.channel)
    return [("matched", matched), ("consented", consented), ("under_cap", under_cap), ("reachable", reachable)]


def dry_run_counts(segment: Segment, rules: dict[str, Any] | None = None) -> dict[str, int]:
    """The funnel a build would have now, counted in one query and written nowhere (the
    editor's live count). Raises ``RuleError`` for invalid rules."""
    steps = funnel_conditions(segment, segment.rules if rules is None else rules, timezone.now())
    return Member.objects.aggregate(**{name: Count("pk", filter=q) for name, q in steps})


def snapshot_members(build_id: int) -> QuerySet[Member]:
    return Member.objects.filter(pk__in=SegmentMember.objects.filter(build_id=build_id).values("member_id"))


def exported_members(export: SegmentExport) -> QuerySet[Member]:
    """Exactly the people an export let out (its DataUsage rows)."""
    usage = DataUsage.objects.filter(
        occurred_at=export.created_at, context_type=EXPORT_CONTEXT, context_ref=export.context_ref
    )
    return Member.objects.filter(pk__in=usage.values("member_id"))


# The contact point a send on each channel uses.
_CONTACT_IDENTITY = {
    Channel.WECHAT: IdentityKind.WECHAT_UNIONID,
    Channel.PUSH: IdentityKind.PLATFORM_USER,
    Channel.IM: IdentityKind.WECHAT_UNIONID,
}
EXPORT_HEADER = ["member_id", "name", "contact", "city", "language", "lifecycle_stage"]


def export_rows(export: SegmentExport, channel: str) -> Iterator[list[Any]]:
    """The rows of an export's CSV, streamed from the database in chunks."""
    members = exported_members(export).order_by("pk")
    if channel in (Channel.SMS, Channel.PHONE):
        members = members.annotate(contact=Coalesce("phone", Value("")))
    elif channel == Channel.EMAIL:
        members = members.annotate(contact=Coalesce("email", Value("")))
    elif channel in _CONTACT_IDENTITY:
        identity = Identity.objects.filter(member=OuterRef("pk"), kind=_CONTACT_IDENTITY[channel]).order_by("pk")
        members = members.annotate(contact=Coalesce(Subquery(identity.values("value")[:1]), Value("")))
    else:
        members = members.annotate(contact=Value(""))
    fields = ("pk", "name", "contact", "city", "locale", "lifecycle_stage")
    for row in members.values_list(*fields).iterator(chunk_size=2000):
        yield list(row)


def contactable_counts(brand: Brand, purposes: Iterable[Purpose] | None = None) -> dict[tuple[str, str], int]:
    """People the brand may contact now, per purpose and channel (``""`` for purposes
    without a channel), with the full ``can_contact`` rule: one query for all pairs."""
    purposes = list(purposes if purposes is not None else Purpose.objects.filter(brand=brand, is_active=True))
    aggregates: dict[str, Any] = {}
    keys: dict[str, tuple[str, str]] = {}
    for purpose in purposes:
        for channel in purpose.channels or [NO_CHANNEL]:
            alias = f"c{len(keys)}"
            keys[alias] = (purpose.code, channel)
            aggregates[alias] = Count("pk", filter=consent_q(brand, purpose, channel) & reachable_q(brand, channel))
    if not aggregates:
        return {}
    row = Member.objects.aggregate(**aggregates)
    return {keys[alias]: row[alias] for alias in keys}


def capture_rate_by_store_month(
    brand: Brand, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[CaptureRate]:
    """Capture rate (orders by members ÷ all orders) per store of ``brand`` and month."""
    return capture_rate(stores=Store.objects.filter(brand=brand), since=since, until=until, period="month")

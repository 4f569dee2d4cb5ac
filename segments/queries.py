"""Reads worth naming: the funnel's conditions, snapshots, contactable counts, capture rate."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db.models import BooleanField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from cdp.db_router import read_connection, replica_reads
from consent.models import NO_CHANNEL, Channel, DataUsage, Purpose
from consent.queries import CAP_WINDOW as CAP_WINDOW  # the weekly limit's window, defined with the rule
from consent.queries import consent_q, contactable_q, preference_q, reachable_q
from members.brand_view import brand_columns
from members.models import Brand, Identity, IdentityKind, Member, Store
from members.queries import CaptureRate, capture_rate

from .models import Segment, SegmentExport, SegmentMember
from .rules import Context, compile_rules, order_strategy

EXPORT_CONTEXT = "segment_export"


def flagged_members(segment: Segment, rules: dict[str, Any], now: dt.datetime) -> QuerySet[Member]:
    """The members the rules match (rules in WHERE, so PostgreSQL plans their subqueries as
    semi-joins), each with three flags, the parts of ``contactable_q``: ``c`` consent,
    ``u`` preferences (a channel they chose or none chosen, not paused, under their weekly
    limit: the funnel's "under frequency cap" step), ``r`` reachable. A build has no time of
    sending, so quiet hours are left to the export (``export_build(send_at=…)``). The
    funnel is then a count over these few rows instead of over every member.

    Everything that depends on the clock (order windows, ages, the minor cutoff, the weekly
    cap's window, "days since") is evaluated as of ``now``: a build passes its start."""
    ctx = order_strategy(rules, Context.for_brand(segment.brand_id, now))

    def flag(q: Q) -> ExpressionWrapper:
        return ExpressionWrapper(q, output_field=BooleanField())

    return (
        Member.objects.filter(compile_rules(rules, ctx))
        .order_by()
        .values(
            member_ref=F("pk"),
            c=flag(consent_q(segment.brand_id, segment.purpose, segment.channel, now=now)),
            # Per member: the weekly count reads only the matched members' sends.
            u=flag(preference_q(segment.brand_id, segment.channel, now=now, per_member=True)),
            r=flag(reachable_q(segment.brand_id, segment.channel)),
        )
    )


# The funnel over flagged rows (an alias ``f``), the same on PostgreSQL and SQLite.
FUNNEL_COUNTS_SQL = (
    "COUNT(*), COUNT(CASE WHEN f.c THEN 1 END), COUNT(CASE WHEN f.c AND f.u THEN 1 END), "
    "COUNT(CASE WHEN f.c AND f.u AND f.r THEN 1 END)"
)


def dry_run_counts(segment: Segment, rules: dict[str, Any] | None = None) -> dict[str, int]:
    """The funnel a build would have now, counted in one query and written nowhere (the
    editor's live count), on a read replica when there is one: an estimate that lets nobody
    out. Raises ``RuleError`` for invalid rules."""
    flagged = flagged_members(segment, segment.rules if rules is None else rules, timezone.now())
    sql, params = flagged.query.sql_with_params()
    with replica_reads(), read_connection().cursor() as cursor:
        cursor.execute(f"SELECT {FUNNEL_COUNTS_SQL} FROM ({sql}) AS f", params)  # noqa: S608 - compiled SQL
        row = cursor.fetchone()
    return dict(zip(("matched", "consented", "under_cap", "reachable"), row, strict=True))


def snapshot_members(build_id: int) -> QuerySet[Member]:
    return Member.objects.filter(pk__in=SegmentMember.objects.filter(build_id=build_id).values("member_id"))


def exported_members(export: SegmentExport) -> QuerySet[Member]:
    """Exactly the people an export let out (its DataUsage rows)."""
    usage = DataUsage.objects.filter(
        occurred_at=export.created_at, context_type=EXPORT_CONTEXT, context_ref=export.context_ref
    )
    return Member.objects.filter(pk__in=usage.values("member_id"))


# The contact point a send on each channel uses.
_CONTACT_FIELD = {Channel.SMS: "phone", Channel.PHONE: "phone", Channel.EMAIL: "email"}
_CONTACT_IDENTITY = {
    Channel.WECHAT: IdentityKind.WECHAT_UNIONID,
    Channel.PUSH: IdentityKind.PLATFORM_USER,
    Channel.IM: IdentityKind.WECHAT_UNIONID,
}
EXPORT_HEADER = ["member_id", "name", "contact", "city", "language", "lifecycle_stage"]


def with_contact(members: QuerySet[Member], channel: str) -> QuerySet[Member]:
    """``members`` annotated with ``contact``: the contact point a send on ``channel`` uses
    (for CSV exports and the API's segment reads)."""
    if channel in _CONTACT_FIELD:
        return members.annotate(contact=F(_CONTACT_FIELD[channel]))
    if channel in _CONTACT_IDENTITY:
        identity = Identity.objects.filter(member=OuterRef("pk"), kind=_CONTACT_IDENTITY[channel]).order_by("pk")
        return members.annotate(contact=Coalesce(Subquery(identity.values("value")[:1]), Value("")))
    return members.annotate(contact=Value(""))


def export_rows(export: SegmentExport, channel: str) -> Iterator[list[Any]]:
    """The rows of an export's CSV, streamed from the database in chunks. ⚑ Brand wall:
    name, city, language and lifecycle stage are the brand's own (``members.brand_view``),
    the contact point the one its consent covers."""
    members = with_contact(exported_members(export).order_by("pk"), channel).values_list("pk", "contact")
    brand_id = Segment.objects.filter(builds=export.build_id).values_list("brand_id", flat=True).get()
    rows = members.iterator(chunk_size=EXPORT_CHUNK)
    while chunk := list(islice(rows, EXPORT_CHUNK)):
        columns = brand_columns([pk for pk, _ in chunk], brand_id)
        for pk, contact in chunk:
            seen = columns[pk]
            yield [pk, seen["name"], contact, seen["city"], seen["locale"], seen["lifecycle_stage"]]


EXPORT_CHUNK = 2000


def contactable_counts(brand: Brand, purposes: Iterable[Purpose] | None = None) -> dict[tuple[str, str], int]:
    """People the brand may contact now, per purpose and channel (``""`` for purposes
    without a channel), with the full ``can_contact`` rule (preferences too; quiet hours
    need a time of sending, so not those): one count per pair. Separate counts let
    PostgreSQL turn each pair's conditions into hash joins; one aggregate with a FILTER per
    pair evaluated every condition as a sub-plan per member (67.5 s against 28.0 s for the
    four pairs of the 10M scale bench, bench/README.md "Scale")."""
    purposes = list(purposes if purposes is not None else Purpose.objects.filter(brand=brand, is_active=True))
    return {
        (purpose.code, channel): Member.objects.filter(contactable_q(brand, purpose, channel)).count()
        for purpose in purposes
        for channel in purpose.channels or [NO_CHANNEL]
    }


def capture_rate_by_store_month(
    brand: Brand, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[CaptureRate]:
    """Capture rate (orders by members ÷ all orders) per store of ``brand`` and month."""
    return capture_rate(stores=Store.objects.filter(brand=brand), since=since, until=until, period="month")

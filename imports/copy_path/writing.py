"""The write phase of a chunk of the COPY path: COPY new members, identities,
memberships; UPDATE changed members and memberships; append the consent events
(``events``); one audit row; then the rows planned to go row by row."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from cdp import audit
from consent.ledger_batch import BatchReferences, copy_lines, copy_text, esc, reserve_ids, temp_table
from consent.models import Notice, Purpose
from members.models import Brand, Identity, Member, Store, StoreMembership
from members.survivorship import stored_profile

from .. import row_by_row
from ..context import ImportContext
from ..report import ImportResult
from ..rows import ParsedRow
from .changes import Plan
from .events import announce, append_consent
from .planning import PROFILE, Person

Rejected = list[tuple[int, str, str]]
MEMBER_COLUMNS = (
    "id", "status", "name", "gender", "birth_date", "province", "city", "locale", "phone", "email", "attributes",
    "profile_observed_at", "order_count", "total_spent", "lifecycle_stage", "created_at", "updated_at",
)  # fmt: skip


def write(ctx: ImportContext, rows: list[ParsedRow], plan: Plan, result: ImportResult, rejected: Rejected) -> None:
    """Write what ``plan`` holds, then run its fallback rows row by row; counts the
    consent events into ``result`` and the rows refused on the way into ``rejected``."""
    # Only the bulk statements go in the block (BatchReferences): the planned people are
    # members this chunk locked FOR UPDATE or creates, the store, brand, purposes and
    # notices get locked FOR KEY SHARE on the way out.
    with BatchReferences() as refs:
        _write_members(ctx, plan)
        events = append_consent(ctx, rows, plan)
        refs.exist(Member, (person.member_id for person in plan.persons))
        refs.lock(Store, [ctx.store.pk])
        refs.lock(Brand, {event.brand_id for event in events})
        refs.lock(Purpose, {event.purpose_id for event in events})
        refs.lock(Notice, {event.notice_id for event in events})
    result.consent_events += len(events)
    if events:
        announce(ctx, [event.pk for event in events])
    _audit(ctx, plan)
    if plan.fallback_rows:
        write_row_by_row(ctx, rows, plan.fallback_rows, result, rejected)


def write_row_by_row(
    ctx: ImportContext, rows: list[ParsedRow], indexes: list[int], result: ImportResult, rejected: Rejected
) -> None:
    """The rows at ``indexes`` through the row-by-row path, in file order, inside the
    chunk's transaction; its refusals go to ``rejected``."""
    row_by_row.process_rows(
        ctx,
        [rows[i] for i in sorted(indexes)],
        result=result,
        reject=lambda number, column, reason: rejected.append((number, column, reason)),
    )


def _write_members(ctx: ImportContext, plan: Plan) -> None:
    """COPY the new members, identities and memberships; UPDATE the changed members and
    memberships."""
    with connection.cursor() as cursor:
        _write_people(cursor, plan)
        _write_identities_and_memberships(cursor, ctx.store, plan)


def _write_people(cursor: Any, plan: Plan) -> None:
    """New members by COPY (their ids reserved first, as identities and events name
    them); changed members from a temporary table filled by COPY."""
    raw, now = cursor.cursor, plan.now
    now_text = now.isoformat()
    new_people = plan.new_people
    if new_people:
        for person, pk in zip(new_people, reserve_ids(cursor, Member._meta.db_table, len(new_people)), strict=True):
            person.member_id = pk
        tail = f"\t0\t0\tprospect\t{now_text}\t{now_text}"
        copy_lines(
            raw,
            Member._meta.db_table,
            MEMBER_COLUMNS,
            (_member_line(p, "active\t") + tail for p in new_people),
        )
    if plan.member_updates:
        temp_table(
            cursor,
            "_import_members",
            "id bigint, name text, gender text, birth_date date, province text, city text, locale text, "
            "phone text, email text, attributes jsonb, observed timestamptz",
        )
        copy_lines(
            raw,
            "_import_members",
            ("id", *PROFILE, "attributes", "observed"),
            (_member_line(p, "") for p in plan.member_updates),
        )
        cursor.execute(
            f"""UPDATE {Member._meta.db_table} m SET name = v.name, gender = v.gender, birth_date = v.birth_date,
                  province = v.province, city = v.city, locale = v.locale, phone = v.phone, email = v.email,
                  attributes = v.attributes, profile_observed_at = v.observed, updated_at = %s
                FROM _import_members v WHERE m.id = v.id""",  # noqa: S608
            [now],
        )


def _write_identities_and_memberships(cursor: Any, store: Store, plan: Plan) -> None:
    """New identities and memberships by COPY; changed memberships from arrays."""
    raw, now = cursor.cursor, plan.now
    now_text = now.isoformat()
    store_id = str(store.pk)
    if plan.identities:
        copy_lines(
            raw,
            Identity._meta.db_table,
            ("member_id", "kind", "value", "store_id", "created_at"),
            (
                f"{person.member_id}\t{kind}\t{esc(value)}\t{store_id}\t{now_text}"
                for person, kind, value in plan.identities
            ),
        )
    if plan.new_memberships:
        copy_lines(
            raw,
            StoreMembership._meta.db_table,
            (
                "member_id",
                "store_id",
                "store_member_id",
                "joined_at",
                "tier",
                "points",
                "profile",
                "profile_observed_at",
                "created_at",
                "updated_at",
            ),
            (
                f"{person.member_id}\t{store_id}\t{esc(row.record.store_member_id)}\t"
                f"{copy_text(row.record.joined_at)}\t{esc(row.record.tier)}\t{row.record.points or 0}\t"
                f"{_store_profile(row)}\t{now_text}\t{now_text}"
                for person, row in plan.new_memberships
            ),
        )
    if plan.membership_updates:
        updates = plan.membership_updates
        cursor.execute(
            f"""UPDATE {StoreMembership._meta.db_table} s SET member_id = v.member_id, joined_at = v.joined_at,
                  tier = v.tier, points = v.points, profile = v.profile::jsonb,
                  profile_observed_at = v.profile_observed_at, updated_at = %s
                FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[], %s::integer[], %s::text[],
                            %s::timestamptz[])
                  AS v(id, member_id, joined_at, tier, points, profile, profile_observed_at)
                WHERE s.id = v.id""",  # noqa: S608
            [
                now,
                [m["id"] for m, _ in updates],
                [person.member_id for _, person in updates],
                [m["joined_at"] for m, _ in updates],
                [m["tier"] for m, _ in updates],
                [m["points"] for m, _ in updates],
                [json.dumps(m["profile"] or {}, ensure_ascii=False) for m, _ in updates],
                [m["profile_observed_at"] for m, _ in updates],
            ],
        )


def _store_profile(row: ParsedRow) -> str:
    """The new membership's ``profile`` and ``profile_observed_at`` columns: the row's
    values as its store's own (the brand wall's source)."""
    profile = stored_profile(row.record.profile())
    if not profile:
        return "{}\t\\N"
    return f"{esc(json.dumps(profile, ensure_ascii=False))}\t{copy_text(row.record.observed_at)}"


def _audit(ctx: ImportContext, plan: Plan) -> None:
    if plan.created_ids or plan.updated_ids:
        # One audit row per chunk naming every member it created or changed (a row per
        # member, as resolve_store_record writes, would be a million rows per file).
        audit.record(
            "members.import_chunk",
            ctx.store,
            changes={
                "source": ctx.source_ref,
                "created": [person.member_id for person in plan.created_ids],
                "updated": sorted({person.member_id for person in plan.updated_ids}),
            },
        )


def _member_line(p: Person, status: str) -> str:
    """id, status (new members: "active\\t"), the profile, attributes and the survivorship
    time, as COPY text."""
    pr = p.profile
    return (
        f"{p.member_id}\t{status}{esc(pr['name'])}\t{pr['gender']}\t{copy_text(pr['birth_date'])}\t"
        f"{esc(pr['province'])}\t{esc(pr['city'])}\t{esc(pr['locale'])}\t{esc(pr['phone'])}\t{esc(pr['email'])}\t"
        f"{esc(_json(p.attributes))}\t{copy_text(p.observed_at)}"
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False) if value else "{}"

"""The PostgreSQL path: a chunk of rows resolved and written with a few set-based
statements instead of a dozen per row.

Per chunk (one transaction), in two phases:

*Prepare* (reads, locks and Python):

1. Look up who owns each identity of the chunk (one join on the unique (kind, value)
   index) and lock those members in id order, as ``resolve_store_record`` does.
2. Replay the chunk in file order over a union-find of its rows and those members. A row
   that touches one person (a member, or earlier rows) joins them; a row that links two
   would be a merge under the row-by-row rules, so its whole group goes through
   ``resolve_store_record`` (rare, and the merge then gets its MergeEvent). Groups that
   touch a merged or erased member go that way too.
3. For every other group, apply the rows in order with the survivorship rules of
   ``members.services`` in memory.

*Write*: COPY new members, identities, memberships and audit rows; UPDATE changed
members and memberships from arrays; append the consent events with
``consent.ledger_batch.append_many`` (same chain and projection rules as a single
append); then the row-by-row groups.

``pipeline`` runs the prepare phase of the next chunk while this one writes, on a second
connection; the next chunk's rows that depend on this one (``Touched``) are *late*: left
unlocked and unplanned, and run row by row after this chunk's commit. The result equals the
row-by-row path on the same file (tests/members/test_import_fast.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from cdp import audit
from consent.ledger_batch import (
    BatchReferences,
    NewEvent,
    append_many,
    copy_lines,
    copy_text,
    esc,
    reserve_ids,
    temp_table,
)
from consent.models import ConsentEvent, Notice, Purpose
from consent.signals import consent_appended
from members.identities import erased_keys as erased_keys_of
from members.models import Brand, Identity, Member, Store, StoreMembership

from . import row_by_row
from .context import ImportContext
from .report import ImportResult
from .rows import ParsedRow

PROFILE = Member.PROFILE_FIELDS  # name, gender, birth_date, province, city, locale, phone, email
_profile_of = attrgetter(*PROFILE)
_DEFAULTS = {name: Member._meta.get_field(name).get_default() for name in PROFILE}
_DEFAULTS["birth_date"] = None
MEMBER_COLUMNS = (
    "id", "status", "name", "gender", "birth_date", "province", "city", "locale", "phone", "email", "attributes",
    "profile_observed_at", "order_count", "total_spent", "lifecycle_stage", "created_at", "updated_at",
)  # fmt: skip


class _Person:
    """A group of rows that are one person: an existing member or a new one."""

    __slots__ = ("member_id", "profile", "observed_at", "attributes", "locale", "changed", "rows")

    def __init__(
        self,
        member_id: int | None = None,
        profile: dict[str, Any] | None = None,
        observed_at: dt.datetime | None = None,
        attributes: dict[str, Any] | None = None,
        locale: str = "",
    ) -> None:
        self.member_id = member_id
        self.profile = profile if profile is not None else {}
        self.observed_at = observed_at
        self.attributes = attributes if attributes is not None else {}
        self.locale = locale
        self.changed = False  # profile or attributes differ from the stored member
        self.rows: list[int] = []


@dataclass
class Touched:
    """What a chunk's transaction reads and writes besides rows no other chunk names:
    every identity key of its rows and every existing member it found. Rows that go
    through ``resolve_store_record`` (merges, erased people) stay inside these too: a
    merge moves the identities, memberships, orders and events of members the look-up
    found, so a later chunk that reaches any of them finds one of those members. Two
    chunks whose sets are disjoint give the same result whichever commits first (see
    ``pipeline``)."""

    keys: set[tuple[str, str]] = field(default_factory=set)
    members: set[int] = field(default_factory=set)


class Turn:
    """Hooks of a chunk's transaction for the pipeline; these defaults run chunks one
    after the other (dry runs, SQLite's plain path, an import inside a transaction)."""

    def pending(self) -> Touched | None:
        """What the chunk before us reads and writes, while it has not committed; None
        once it has. Our rows that share a key or a member with it are *late*: they go
        row by row after its commit (``run_chunk``)."""
        return None

    def wait_for_predecessor(self) -> None:
        """Wait until the chunk before us committed (too many late rows)."""

    def prepared(self, touched: Touched, late: int = 0) -> None:
        """The prepare phase is done (``late`` rows wait for the chunk before us); the
        next chunk may start its own."""

    def before_commit(self) -> None:
        """Wait until the chunk before us committed."""


SEQUENTIAL = Turn()
LATE_ROWS_MIN = 50


class _Retry(Exception):
    pass


def process_rows(ctx: ImportContext, rows: list[ParsedRow], turn: Turn = SEQUENTIAL) -> None:
    """Resolve and write one chunk in one transaction, retried when a concurrent writer
    got in between (the chunk rolled back whole, so reading again and replaying is safe)."""
    attempts = settings.RESOLUTION_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        local = ImportResult()
        rejected: list[tuple[int, str, str]] = []
        try:
            with transaction.atomic():
                run_chunk(ctx, rows, local, rejected, turn)
        except (IntegrityError, _Retry):
            if attempt == attempts:
                raise
            continue
        record_outcome(ctx, local, rejected)
        return


def run_chunk(
    ctx: ImportContext, rows: list[ParsedRow], result: ImportResult, rejected: list, turn: Turn = SEQUENTIAL
) -> None:
    """Both phases, inside the caller's transaction."""
    plan = _prepare(ctx, rows, result, turn)
    turn.prepared(plan.touched, len(plan.late_rows))
    _write(ctx, rows, plan, result, rejected)
    turn.before_commit()
    if plan.late_rows:
        _row_by_row(ctx, rows, plan.late_rows, result, rejected)
        rejected.sort()  # file order, as one row after the other reports them


def record_outcome(ctx: ImportContext, local: ImportResult, rejected: list[tuple[int, str, str]]) -> None:
    ctx.result.add(local)
    for number, column, reason in rejected:
        ctx.errors.reject(number, column, reason)


def _owners(cursor: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    if not keys:
        return {}
    # Two text parameters split in SQL: binding lists costs a conversion per element.
    # The validator refuses cells with the separator (\x1f) in them.
    cursor.execute(
        f"""SELECT i.kind, i.value, i.member_id FROM {Identity._meta.db_table} i
            JOIN unnest(string_to_array(%s, E'\\x1f'), string_to_array(%s, E'\\x1f')) AS k(kind, value)
              ON i.kind = k.kind AND i.value = k.value""",  # noqa: S608
        ["\x1f".join([k for k, _ in keys]), "\x1f".join([v for _, v in keys])],
    )
    return {(kind, value): member_id for kind, value, member_id in cursor.fetchall()}


@dataclass
class _Plan:
    now: dt.datetime
    touched: Touched
    persons: list[_Person]
    created: set[int]  # id() of the persons new in this chunk
    new_people: list[_Person]
    member_updates: list[_Person]
    identities: list[tuple[_Person, str, str]]
    new_memberships: list[tuple[_Person, ParsedRow]]
    membership_updates: list[tuple[dict[str, Any], _Person]]  # the membership's new values, owner
    created_ids: list[_Person]  # audit: members created, in file order
    updated_ids: list[_Person]  # audit: members updated
    fallback_rows: list[int]
    late_rows: list[int]  # rows that wait for the chunk before us (``Turn.pending``)


def _prepare(ctx: ImportContext, rows: list[ParsedRow], result: ImportResult, turn: Turn) -> _Plan:
    store = ctx.store
    now = timezone.now()
    row_keys = [row.record.identity_keys() for row in rows]
    key_set = {key for keys in row_keys for key in keys}
    all_keys = list(key_set)  # any order: the look-up is a join, locks go by member id
    limit = _late_limit(len(rows))
    pending = turn.pending()
    late_keys: set[tuple[str, str]] = set()
    if pending is not None:
        late_keys = key_set & pending.keys
        if late_keys and _rows_naming(row_keys, late_keys) > limit:
            turn.wait_for_predecessor()
            pending, late_keys = None, set()
    # Identities of people erased at their request are stored as keyed hashes; a row that
    # names one is refused by resolve_store_record, so its group takes that path.
    erased_keys = erased_keys_of(all_keys)
    lookup = [*all_keys, *erased_keys]
    with connection.cursor() as cursor:
        owners = _owners(cursor, lookup)
        late_members: set[int] = set()
        if pending is not None:
            late_members = pending.members.intersection(owners.values())
            if late_members and _rows_naming(row_keys, {k for k, m in owners.items() if m in late_members}) > limit:
                turn.wait_for_predecessor()
                late_members = set()
                owners = _owners(cursor, lookup)
        erased_hits = {erased_keys[key] for key in owners if key in erased_keys}
        owners = {key: member_id for key, member_id in owners.items() if key not in erased_keys}
        found_ids = set(owners.values())

    # --- 2. Replay the chunk over a union-find ------------------------------------------
    # Nodes: a member is its (positive) id, row i is -(i + 1). A member node stays the
    # root, so a group's member is its root.
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    key_node: dict[tuple[str, str], int] = {}
    for key, member_id in owners.items():
        parent[member_id] = member_id
        key_node[key] = member_id
    flagged: list[int] = []
    new_keys: list[list[tuple[str, str]]] = []
    for index, keys in enumerate(row_keys):
        node = -(index + 1)
        parent[node] = node
        roots = {find(key_node[key]) for key in keys if key in key_node}
        if roots:
            members_among = [root for root in roots if root > 0]
            top = members_among[0] if members_among else next(iter(roots))
            for root in roots:
                if root != top:
                    parent[root] = top
            parent[node] = top
            if len(roots) > 1:
                flagged.append(node)
        if erased_hits and not erased_hits.isdisjoint(keys):
            flagged.append(node)
        fresh = [key for key in keys if key not in key_node]
        new_keys.append(fresh)
        for key in fresh:
            key_node[key] = node
    late_roots = {find(member_id) for member_id in late_members}
    if late_keys:
        late_roots.update(find(-(index + 1)) for index, keys in enumerate(row_keys) if not late_keys.isdisjoint(keys))

    # Lock the members we plan (not those of late rows: the chunk before us may hold
    # their locks; late rows take them after its commit) in id order, as
    # resolve_store_record does, then check nobody moved their identities meanwhile.
    member_ids = sorted(m for m in found_ids if find(m) not in late_roots) if late_roots else sorted(found_ids)
    members: dict[int, tuple] = {}
    if member_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT id, status, locale, attributes, profile_observed_at, {", ".join(PROFILE)}
                    FROM {Member._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE""",  # noqa: S608
                [member_ids],
            )
            for member_id, status, locale, attributes, observed, *profile in cursor.fetchall():
                attrs = attributes if isinstance(attributes, dict) else json.loads(attributes or "{}")
                members[member_id] = (status, locale, attrs, observed, profile)
            locked = set(member_ids)
            owned = sorted(key for key, owner in owners.items() if owner in locked)
            if _owners(cursor, owned) != {key: owners[key] for key in owned}:
                raise _Retry  # identities moved between our read and the lock
    fallback_roots = {find(node) for node in flagged}
    for member_id, info in members.items():
        if info[0] != Member.Status.ACTIVE:
            fallback_roots.add(find(member_id))

    groups: dict[int, list[int]] = {}
    for index in range(len(rows)):
        root = find(-(index + 1))
        if root in groups:
            groups[root].append(index)
        else:
            groups[root] = [index]

    # --- 3. Apply rows in order, in memory ------------------------------------------------
    persons: list[_Person] = []
    fallback_rows: list[int] = []
    late_rows: list[int] = []
    for root, indexes in groups.items():
        if root in late_roots:
            late_rows.extend(indexes)
            continue
        if root in fallback_roots:
            fallback_rows.extend(indexes)
            continue
        if root > 0:
            _status, locale, attrs, observed, profile = members[root]
            person = _Person(root, dict(zip(PROFILE, profile, strict=True)), observed, dict(attrs), locale or "")
        else:
            person = _Person()
        person.rows = indexes
        persons.append(person)

    # A membership can exist only where the store member id is a known identity.
    known = [i for p in persons for i in p.rows if row_keys[i][0] in owners]
    existing = _memberships(store, [rows[i].record.store_member_id for i in known])
    plan = _Plan(
        now=now,
        touched=_touched(key_set, found_ids, pending if late_rows else None),
        persons=persons,
        created=set(),
        new_people=[],
        member_updates=[],
        identities=[],
        new_memberships=[],
        membership_updates=[],
        created_ids=[],
        updated_ids=[],
        fallback_rows=fallback_rows,
        late_rows=late_rows,
    )
    identities, new_memberships = plan.identities, plan.new_memberships
    for person in persons:
        created_here = person.member_id is None
        for position, index in enumerate(person.rows):
            row = rows[index]
            record = row.record
            values = {
                name: value for name, value in zip(PROFILE, _profile_of(record), strict=True) if value not in (None, "")
            }
            fresh = new_keys[index]
            if created_here and position == 0:
                person.profile = {**_DEFAULTS, **values}
                person.observed_at = record.observed_at
                person.attributes = dict(record.attributes)
                identities.extend((person, k, v) for k, v in fresh)
                new_memberships.append((person, row))
                result.created += 1
                plan.created.add(id(person))
                plan.created_ids.append(person)
                continue
            newer = person.observed_at is None or record.observed_at >= person.observed_at
            changed = _apply_profile(person, values, newer=newer)
            if record.attributes:
                merged = {**person.attributes, **record.attributes}
                if merged != person.attributes:
                    person.attributes = merged
                    changed.append("attributes")
            if changed:
                # What resolve_store_record saves: the survivorship time moves with a save.
                if newer:
                    person.observed_at = record.observed_at
                if not created_here:
                    person.changed = True
            identities.extend((person, k, v) for k, v in fresh)
            membership = existing.get(record.store_member_id) if row_keys[index][0] in owners else None
            if membership is None:
                new_memberships.append((person, row))
                changed.append("membership")
            else:
                updates = _membership_changes(membership, person, record)
                if updates:
                    membership.update(updates)
                    if not any(m is membership for m, _ in plan.membership_updates[-1:]):
                        plan.membership_updates.append((membership, person))
                    changed.append("membership")
            if changed or fresh:
                result.updated += 1
                plan.updated_ids.append(person)
        if created_here:
            plan.new_people.append(person)
        elif person.changed:
            plan.member_updates.append(person)
    return plan


def _write(ctx: ImportContext, rows: list[ParsedRow], plan: _Plan, result: ImportResult, rejected: list) -> None:
    # Only the bulk statements go in the block (BatchReferences): the planned people are
    # members this chunk locked FOR UPDATE or creates, the store, brand, purposes and
    # notices get locked FOR KEY SHARE on the way out.
    with BatchReferences() as refs:
        _write_members(ctx, plan)
        events = _append_consent(ctx, rows, plan)
        refs.exist(Member, (person.member_id for person in plan.persons))
        refs.lock(Store, [ctx.store.pk])
        refs.lock(Brand, {event.brand_id for event in events})
        refs.lock(Purpose, {event.purpose_id for event in events})
        refs.lock(Notice, {event.notice_id for event in events})
    result.consent_events += len(events)
    if events:
        _announce(ctx, [event.pk for event in events])
    _audit(ctx, plan)
    if plan.fallback_rows:
        _row_by_row(ctx, rows, plan.fallback_rows, result, rejected)


def _announce(ctx: ImportContext, event_ids: list[int]) -> None:
    """``consent_appended`` for the chunk's events once it commits (webhooks push them to
    the brand's platforms, as ``record_consent`` does for each row on the plain path);
    nothing if it rolls back (a retry, a dry run). Robust: the chunk has committed, so a
    receiver that fails (the broker is down) is logged, not raised into the import."""
    brand_id = ctx.store.brand_id
    transaction.on_commit(
        lambda: consent_appended.send(sender=ConsentEvent, brand_id=brand_id, event_ids=event_ids,
                                      source_type="import_job"),
        robust=True,
    )  # fmt: skip


def _row_by_row(
    ctx: ImportContext, rows: list[ParsedRow], indexes: list[int], result: ImportResult, rejected: list
) -> None:
    row_by_row.process_rows(
        ctx,
        [rows[i] for i in sorted(indexes)],
        result=result,
        reject=lambda number, column, reason: rejected.append((number, column, reason)),
    )


def _rows_naming(row_keys: list[list[tuple[str, str]]], keys: set[tuple[str, str]]) -> int:
    return sum(1 for row in row_keys if not keys.isdisjoint(row))


def _late_limit(rows: int) -> int:
    """Late rows go row by row (a dozen queries each): beyond this many, a chunk waits
    for the one before it instead."""
    return max(LATE_ROWS_MIN, rows // 100)


def _touched(keys: set, members: set[int], pending: Touched | None) -> Touched:
    """Our keys and found members; with late rows, also those of the chunk before us:
    after its commit our late rows may reach the people it created or changed, which our
    successor must then treat as ours."""
    if pending is None:
        return Touched(keys=keys, members=members)
    return Touched(keys=keys | pending.keys, members=members | pending.members)


def _apply_profile(person: _Person, values: dict[str, Any], *, newer: bool) -> list[str]:
    """``members.services._apply_profile`` on the in-memory copy of a member."""
    changed = []
    profile = person.profile
    for name, value in values.items():
        current = profile.get(name)
        if current == value:
            continue
        if current in (None, "") or newer:
            profile[name] = value
            changed.append(name)
    return changed


def _memberships(store: Any, store_member_ids: list[str]) -> dict[str, dict[str, Any]]:
    """This store's memberships of these member ids (only existing members can have one)."""
    if not store_member_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT s.id, s.member_id, s.store_member_id, s.joined_at, s.tier, s.points
                FROM {StoreMembership._meta.db_table} s
                JOIN unnest(string_to_array(%s, E'\\x1f')) AS x(id) ON s.store_member_id = x.id
                WHERE s.store_id = %s""",  # noqa: S608
            ["\x1f".join(store_member_ids), store.pk],
        )
        return {
            smid: {"id": pk, "member_id": member_id, "joined_at": joined_at, "tier": tier, "points": points}
            for pk, member_id, smid, joined_at, tier, points in cursor.fetchall()
        }


def _membership_changes(existing: dict[str, Any], person: _Person, record: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if existing["member_id"] != person.member_id:
        changes["member_id"] = person.member_id
    for name in ("joined_at", "tier", "points"):
        value = getattr(record, name)
        if value not in (None, "") and existing[name] != value:
            changes[name] = value
    return changes


def _write_members(ctx: ImportContext, plan: _Plan) -> None:
    store = ctx.store
    now = plan.now
    with connection.cursor() as cursor:
        raw = cursor.cursor
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
                ("member_id", "store_id", "store_member_id", "joined_at", "tier", "points", "created_at", "updated_at"),
                (
                    f"{person.member_id}\t{store_id}\t{esc(row.record.store_member_id)}\t"
                    f"{copy_text(row.record.joined_at)}\t{esc(row.record.tier)}\t{row.record.points or 0}\t"
                    f"{now_text}\t{now_text}"
                    for person, row in plan.new_memberships
                ),
            )
        if plan.membership_updates:
            updates = plan.membership_updates
            cursor.execute(
                f"""UPDATE {StoreMembership._meta.db_table} s SET member_id = v.member_id, joined_at = v.joined_at,
                      tier = v.tier, points = v.points, updated_at = %s
                    FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[], %s::integer[])
                      AS v(id, member_id, joined_at, tier, points)
                    WHERE s.id = v.id""",  # noqa: S608
                [
                    now,
                    [m["id"] for m, _ in updates],
                    [person.member_id for _, person in updates],
                    [m["joined_at"] for m, _ in updates],
                    [m["tier"] for m, _ in updates],
                    [m["points"] for m, _ in updates],
                ],
            )


def _audit(ctx: ImportContext, plan: _Plan) -> None:
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


def _member_line(p: _Person, status: str) -> str:
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


def _append_consent(ctx: ImportContext, rows: list[ParsedRow], plan: _Plan) -> list[NewEvent]:
    """Append the consent events of the planned rows; returns them."""
    wanted = []
    for person in plan.persons:
        for index in person.rows:
            if rows[index].consents:
                wanted.append((index, person))
    if not wanted:
        return []
    wanted.sort(key=lambda item: item[0])  # file order; choices in column order
    # A person new in this chunk has no events yet: look up only the others' external ids.
    created = plan.created
    seen = row_by_row.existing_external_ids(
        ctx,
        [
            rows[index].external_id(choice)
            for index, person in wanted
            if id(person) not in created
            for choice in rows[index].consents
        ],
    )
    events = []
    brand_id, store_id, source_ref = ctx.store.brand_id, ctx.store.pk, ctx.source_ref[:200]
    recorded_at = plan.now
    notices: dict[tuple[int, str], int | None] = {}
    for index, person in wanted:
        row = rows[index]
        evidence = None
        for choice in row.consents:
            external_id = row.external_id(choice)
            if external_id in seen:
                continue
            seen.add(external_id)
            key = (choice.purpose.id, person.locale)
            if key not in notices:
                notice = ctx.notice_for(*key)
                notices[key] = notice.pk if notice else None
            if evidence is None:
                evidence = ctx.evidence_text(row)
            events.append(
                NewEvent(
                    member_id=person.member_id,
                    brand_id=brand_id,
                    purpose_id=choice.purpose.id,
                    channel=choice.channel,
                    action=choice.action,
                    occurred_at=row.occurred_at,
                    recorded_at=recorded_at,
                    source_type="import_job",
                    source_ref=source_ref,
                    store_id=store_id,
                    notice_id=notices[key],
                    evidence=evidence,
                    external_id=external_id,
                )
            )
    append_many(events, fresh_members={person.member_id for person in plan.new_people})
    return events

"""The PostgreSQL path: a chunk of rows resolved and written with a few set-based
statements instead of a dozen per row.

Per chunk (one transaction):

1. Look up who owns each identity of the chunk (one join on the unique (kind, value)
   index) and lock those members in id order, as ``resolve_store_record`` does.
2. Replay the chunk in file order over a union-find of its rows and those members. A row
   that touches one person (a member, or earlier rows) joins them; a row that links two
   would be a merge under the row-by-row rules, so its whole group goes through
   ``resolve_store_record`` (rare, and the merge then gets its MergeEvent). Groups that
   touch a merged or erased member go that way too.
3. For every other group, apply the rows in order with the survivorship rules of
   ``members.services`` in memory, then write: COPY new members, identities, memberships
   and audit rows; UPDATE changed members and memberships from arrays.
4. Append the consent events with ``consent.ledger_batch.append_many`` (same chain and
   projection rules as a single append).

The result equals the row-by-row path on the same file (tests/members/test_import_fast.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from cdp import audit
from consent.ledger_batch import NewEvent, append_many, copy_lines, copy_text, esc, temp_table
from consent.models import canonical_json
from members.identities import erased_value
from members.models import Identity, Member, StoreMembership

from . import plain
from .context import ImportContext
from .report import ImportResult
from .rows import ParsedRow

PROFILE = Member.PROFILE_FIELDS  # name, gender, birth_date, province, city, locale, phone, email
MEMBER_COLUMNS = (
    "id", "status", "name", "gender", "birth_date", "province", "city", "locale", "phone", "email", "attributes",
    "profile_observed_at", "order_count", "total_spent", "lifecycle_stage", "created_at", "updated_at",
)  # fmt: skip


@dataclass
class _Person:
    """A group of rows that are one person: an existing member or a new one."""

    member_id: int | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    observed_at: dt.datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    locale: str = ""
    changed: bool = False  # profile or attributes differ from the stored member
    rows: list[int] = field(default_factory=list)


class _Retry(Exception):
    pass


def process_rows(ctx: ImportContext, rows: list[ParsedRow]) -> None:
    attempts = settings.RESOLUTION_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        local = ImportResult()
        rejected: list[tuple[int, str, str]] = []
        try:
            with transaction.atomic():
                _process(ctx, rows, local, rejected)
        except (IntegrityError, _Retry):
            # A concurrent writer created one of our identities: the chunk rolled back
            # whole, so reading the owners again and replaying it is safe.
            if attempt == attempts:
                raise
            continue
        ctx.result.add(local)
        for number, column, reason in rejected:
            ctx.errors.reject(number, column, reason)
        return


def _owners(cursor: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    if not keys:
        return {}
    # Two text parameters split in SQL: binding lists costs a conversion per element.
    # The validator refuses cells with the separator (\x1f) in them.
    cursor.execute(
        f"""SELECT i.kind, i.value, i.member_id FROM {Identity._meta.db_table} i
            JOIN unnest(string_to_array(%s, E'\\x1f'), string_to_array(%s, E'\\x1f')) AS k(kind, value)
              ON i.kind = k.kind AND i.value = k.value""",  # noqa: S608
        ["\x1f".join(k for k, _ in keys), "\x1f".join(v for _, v in keys)],
    )
    return {(kind, value): member_id for kind, value, member_id in cursor.fetchall()}


def _process(ctx: ImportContext, rows: list[ParsedRow], result: ImportResult, rejected: list) -> None:
    store = ctx.store
    now = timezone.now()
    row_keys = [row.record.identity_keys() for row in rows]
    all_keys = sorted({key for keys in row_keys for key in keys})
    # Identities of people erased at their request are stored as keyed hashes; a row that
    # names one is refused by resolve_store_record, so its group takes that path.
    erased_keys = {(kind, erased_value(kind, value)): (kind, value) for kind, value in all_keys}
    with connection.cursor() as cursor:
        owners = _owners(cursor, [*all_keys, *erased_keys])
        erased_hits = {erased_keys[key] for key in owners if key in erased_keys}
        owners = {key: member_id for key, member_id in owners.items() if key not in erased_keys}
        member_ids = sorted(set(owners.values()))
        members: dict[int, dict[str, Any]] = {}
        if member_ids:
            cursor.execute(
                f"""SELECT id, status, locale, attributes, profile_observed_at, {", ".join(PROFILE)}
                    FROM {Member._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE""",  # noqa: S608
                [member_ids],
            )
            for member_id, status, locale, attributes, observed, *profile in cursor.fetchall():
                attrs = attributes if isinstance(attributes, dict) else json.loads(attributes or "{}")
                members[member_id] = {
                    "status": status,
                    "locale": locale,
                    "attributes": attrs,
                    "observed": observed,
                    "profile": dict(zip(PROFILE, profile, strict=True)),
                }
            owned = sorted(owners)
            if _owners(cursor, owned) != owners:
                raise _Retry  # identities moved between our read and the lock

    # --- 2. Replay the chunk over a union-find ------------------------------------------
    parent: dict[Any, Any] = {}

    def find(node: Any) -> Any:
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    key_node: dict[tuple[str, str], Any] = {}
    for key, member_id in owners.items():
        node = ("m", member_id)
        parent.setdefault(node, node)
        key_node[key] = node
    flagged: list[Any] = []
    new_keys: list[list[tuple[str, str]]] = []

    def union(a: Any, b: Any) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        # A member node stays the root, so a group's member is its root.
        if ra[0] == "m":
            parent[rb] = ra
        else:
            parent[ra] = rb

    for index, keys in enumerate(row_keys):
        node = ("r", index)
        parent[node] = node
        roots = {find(key_node[key]) for key in keys if key in key_node}
        for root in roots:
            union(node, root)
        if len(roots) > 1 or (erased_hits and not erased_hits.isdisjoint(keys)):
            flagged.append(node)
        new_keys.append([key for key in keys if key not in key_node])
        for key in keys:
            key_node.setdefault(key, node)
    fallback_roots = {find(node) for node in flagged}
    for member_id, info in members.items():
        if info["status"] != Member.Status.ACTIVE:
            fallback_roots.add(find(("m", member_id)))

    groups: dict[Any, list[int]] = defaultdict(list)
    for index in range(len(rows)):
        groups[find(("r", index))].append(index)

    # --- 3. Apply rows in order, in memory ------------------------------------------------
    persons: dict[Any, _Person] = {}
    fallback_rows: list[int] = []
    for root, indexes in groups.items():
        if root in fallback_roots:
            fallback_rows.extend(indexes)
            continue
        if root[0] == "m":
            info = members[root[1]]
            person = _Person(
                member_id=root[1],
                profile=dict(info["profile"]),
                observed_at=info["observed"],
                attributes=dict(info["attributes"]),
                locale=info["locale"] or "",
            )
        else:
            person = _Person()
        person.rows = indexes
        persons[root] = person

    store_keys = [keys[0] for keys in row_keys]
    cursor_memberships = _memberships(store, [rows[i].record.store_member_id for p in persons.values() for i in p.rows])

    new_people: list[_Person] = []
    member_updates: list[_Person] = []
    identities: list[tuple[Any, str, str]] = []  # person, kind, value
    new_memberships: list[tuple[_Person, ParsedRow]] = []
    membership_updates: list[tuple[dict[str, Any], _Person]] = []  # the membership's new values, owner
    audit_rows: list[tuple[_Person, str, dict[str, Any]]] = []
    for person in persons.values():
        created_here = person.member_id is None
        for position, index in enumerate(person.rows):
            row = rows[index]
            record = row.record
            values = {k: v for k, v in record.profile().items() if v not in (None, "")}
            if created_here and position == 0:
                person.profile = {
                    name: values.get(name, Member._meta.get_field(name).get_default()) for name in PROFILE
                }
                person.profile["birth_date"] = values.get("birth_date")
                person.observed_at = record.observed_at
                person.attributes = dict(record.attributes)
                identities.extend((person, k, v) for k, v in new_keys[index])
                new_memberships.append((person, row))
                result.created += 1
                audit_rows.append((person, "member.created", {"store": store.code}))
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
            identities.extend((person, k, v) for k, v in new_keys[index])
            if store_keys[index] in owners:
                existing = cursor_memberships.get(record.store_member_id)
                if existing is None:
                    new_memberships.append((person, row))
                    changed.append("membership")
                else:
                    updates = _membership_changes(existing, person, record)
                    if updates:
                        existing.update(updates)
                        if not any(m is existing for m, _ in membership_updates[-1:]):
                            membership_updates.append((existing, person))
                        changed.append("membership")
            else:
                new_memberships.append((person, row))
                changed.append("membership")
            if changed or new_keys[index]:
                result.updated += 1
                audit_rows.append(
                    (
                        person,
                        "member.updated",
                        {"store": store.code, "fields": changed, "identities_added": len(new_keys[index])},
                    )
                )
        if created_here:
            new_people.append(person)
        elif person.changed:
            member_updates.append(person)

    # --- 4. Write ---------------------------------------------------------------------------
    _write(ctx, now, new_people, member_updates, identities, new_memberships, membership_updates, audit_rows)
    created_ids = {id(person) for person in new_people}
    result.consent_events += _append_consent(ctx, rows, persons, created_ids, now)

    if fallback_rows:
        fallback_rows.sort()
        plain.process_rows(
            ctx,
            [rows[i] for i in fallback_rows],
            result=result,
            reject=lambda number, column, reason: rejected.append((number, column, reason)),
        )


def _apply_profile(person: _Person, values: dict[str, Any], *, newer: bool) -> list[str]:
    """``members.services._apply_profile`` on the in-memory copy of a member."""
    changed = []
    for name, value in values.items():
        current = person.profile.get(name)
        if current == value:
            continue
        if current in (None, "") or newer:
            person.profile[name] = value
            changed.append(name)
    return changed


def _memberships(store: Any, store_member_ids: list[str]) -> dict[str, dict[str, Any]]:
    found = {}
    for m in StoreMembership.objects.filter(store=store, store_member_id__in=store_member_ids).values(
        "id", "member_id", "store_member_id", "joined_at", "tier", "points"
    ):
        found[m["store_member_id"]] = m
    return found


def _membership_changes(existing: dict[str, Any], person: _Person, record: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if existing["member_id"] != person.member_id:
        changes["member_id"] = person.member_id
    for name in ("joined_at", "tier", "points"):
        value = getattr(record, name)
        if value not in (None, "") and existing[name] != value:
            changes[name] = value
    return changes


def _write(
    ctx: ImportContext,
    now: dt.datetime,
    new_people: list[_Person],
    member_updates: list[_Person],
    identities: list[tuple[_Person, str, str]],
    new_memberships: list[tuple[_Person, ParsedRow]],
    membership_updates: list[tuple[dict[str, Any], _Person]],
    audit_rows: list[tuple[_Person, str, dict[str, Any]]],
) -> None:
    store = ctx.store
    with connection.cursor() as cursor:
        raw = cursor.cursor
        now_text = now.isoformat()
        if new_people:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Member._meta.db_table, len(new_people)],
            )
            for person, (pk,) in zip(new_people, sorted(cursor.fetchall()), strict=True):
                person.member_id = pk
            copy_lines(raw, Member._meta.db_table, MEMBER_COLUMNS, (_member_line(p, now_text) for p in new_people))
        if member_updates:
            temp_table(
                cursor,
                "_import_members",
                "id bigint, name text, gender text, birth_date date, province text, city text, locale text, "
                "phone text, email text, attributes jsonb, observed timestamptz",
            )
            copy_lines(
                raw,
                "_import_members",
                ("id", *PROFILE[:-2], "phone", "email", "attributes", "observed"),
                (_member_line(p, now_text, update=True) for p in member_updates),
            )
            cursor.execute(
                f"""UPDATE {Member._meta.db_table} m SET name = v.name, gender = v.gender, birth_date = v.birth_date,
                      province = v.province, city = v.city, locale = v.locale, phone = v.phone, email = v.email,
                      attributes = v.attributes, profile_observed_at = v.observed, updated_at = %s
                    FROM _import_members v WHERE m.id = v.id""",  # noqa: S608
                [now],
            )
        store_id = str(store.pk)
        if identities:
            copy_lines(
                raw,
                Identity._meta.db_table,
                ("member_id", "kind", "value", "store_id", "created_at"),
                (
                    f"{person.member_id}\t{kind}\t{esc(value)}\t{store_id}\t{now_text}"
                    for person, kind, value in identities
                ),
            )
        if new_memberships:
            copy_lines(
                raw,
                StoreMembership._meta.db_table,
                ("member_id", "store_id", "store_member_id", "joined_at", "tier", "points", "created_at", "updated_at"),
                (
                    f"{person.member_id}\t{store_id}\t{esc(row.record.store_member_id)}\t"
                    f"{copy_text(row.record.joined_at)}\t{esc(row.record.tier)}\t{row.record.points or 0}\t"
                    f"{now_text}\t{now_text}"
                    for person, row in new_memberships
                ),
            )
        if membership_updates:
            cursor.execute(
                f"""UPDATE {StoreMembership._meta.db_table} s SET member_id = v.member_id, joined_at = v.joined_at,
                      tier = v.tier, points = v.points, updated_at = %s
                    FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[], %s::integer[])
                      AS v(id, member_id, joined_at, tier, points)
                    WHERE s.id = v.id""",  # noqa: S608
                [
                    now,
                    [m["id"] for m, _ in membership_updates],
                    [person.member_id for _, person in membership_updates],
                    [m["joined_at"] for m, _ in membership_updates],
                    [m["tier"] for m, _ in membership_updates],
                    [m["points"] for m, _ in membership_updates],
                ],
            )
        if audit_rows:
            # One audit row per chunk naming every member it created or changed (a row per
            # member, as resolve_store_record writes, would be a million rows per file).
            created = [person.member_id for person, action, _ in audit_rows if action == "member.created"]
            updated = sorted({person.member_id for person, action, _ in audit_rows if action == "member.updated"})
            audit.record(
                "members.import_chunk",
                store,
                changes={"source": ctx.source_ref, "created": created, "updated": updated},
            )


def _member_line(p: _Person, now_text: str, *, update: bool = False) -> str:
    pr = p.profile
    observed = copy_text(p.observed_at)
    values = (
        f"{p.member_id}\t{esc(pr['name'])}\t{pr['gender']}\t{copy_text(pr['birth_date'])}\t{esc(pr['province'])}\t"
        f"{esc(pr['city'])}\t{esc(pr['locale'])}\t{esc(pr['phone'])}\t{esc(pr['email'])}\t{esc(_json(p.attributes))}"
    )
    if update:
        return f"{values}\t{observed}"
    # MEMBER_COLUMNS order: id, status, then the profile.
    head, rest = values.split("\t", 1)
    return f"{head}\tactive\t{rest}\t{observed}\t0\t0\tprospect\t{now_text}\t{now_text}"


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False) if value else "{}"


def _append_consent(
    ctx: ImportContext, rows: list[ParsedRow], persons: dict[Any, _Person], created: set[int], now: dt.datetime
) -> int:
    wanted = []
    for person in persons.values():
        for index in person.rows:
            for choice in rows[index].consents:
                wanted.append((index, person, choice))
    if not wanted:
        return 0
    wanted.sort(key=lambda item: item[0])  # file order, then column order (sort is stable)
    # A person new in this chunk has no events yet: look up only the others' external ids.
    seen = plain.existing_external_ids(
        ctx, [rows[i].external_id(choice) for i, person, choice in wanted if id(person) not in created]
    )
    events = []
    brand_id, store_id, source_ref = ctx.store.brand_id, ctx.store.pk, ctx.source_ref[:200]
    evidence: dict[int, str] = {}
    for index, person, choice in wanted:
        row = rows[index]
        external_id = row.external_id(choice)
        if external_id in seen:
            continue
        seen.add(external_id)
        notice = ctx.notice_for(choice.purpose.id, person.locale)
        if index not in evidence:
            evidence[index] = canonical_json(ctx.evidence(row))
        events.append(
            NewEvent(
                member_id=person.member_id,
                brand_id=brand_id,
                purpose_id=choice.purpose.id,
                channel=choice.channel,
                action=choice.action,
                occurred_at=row.occurred_at,
                recorded_at=now,
                source_type="import_job",
                source_ref=source_ref,
                store_id=store_id,
                notice_id=notice.pk if notice else None,
                evidence=evidence[index],
                external_id=external_id,
            )
        )
    append_many(events)
    return len(events)

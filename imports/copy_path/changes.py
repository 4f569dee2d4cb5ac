"""What a chunk of the COPY path writes: the rows of each planned person applied in file
order, in memory, by the survivorship rules of ``members.survivorship`` (the ones
``resolve_store_record`` applies row by row), collected as the lists ``writing`` turns
into COPY and UPDATE statements."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone

from members.models import Member, Store, StoreMembership
from members.survivorship import membership_changes, observed_values, stored_profile, update_from_record

from ..context import ImportContext
from ..report import ImportResult
from ..rows import ParsedRow
from .planning import PROFILE, People, Person, find_people
from .turns import Touched, Turn

# A new member's profile: the record's values over the model's defaults (what
# Member.objects.create stores), as COPY needs every column.
_DEFAULTS = {name: Member._meta.get_field(name).get_default() for name in PROFILE}
_DEFAULTS["birth_date"] = None


@dataclass
class Plan:
    """What a chunk writes (``writing``), for the people ``planning`` found."""

    now: dt.datetime
    people: People
    created: set[int] = field(default_factory=set)  # id() of the persons new in this chunk
    new_people: list[Person] = field(default_factory=list)
    member_updates: list[Person] = field(default_factory=list)
    identities: list[tuple[Person, str, str]] = field(default_factory=list)
    new_memberships: list[tuple[Person, ParsedRow]] = field(default_factory=list)
    # the membership's new values, owner
    membership_updates: list[tuple[dict[str, Any], Person]] = field(default_factory=list)
    created_ids: list[Person] = field(default_factory=list)  # audit: members created, in file order
    updated_ids: list[Person] = field(default_factory=list)  # audit: members updated

    @property
    def persons(self) -> list[Person]:
        return self.people.persons

    @property
    def touched(self) -> Touched:
        return self.people.touched

    @property
    def fallback_rows(self) -> list[int]:
        return self.people.fallback_rows

    @property
    def late_rows(self) -> list[int]:
        return self.people.late_rows


def plan_chunk(ctx: ImportContext, rows: list[ParsedRow], result: ImportResult, turn: Turn) -> Plan:
    """The prepare phase of a chunk: who is who (``planning``), then each person's rows
    applied in order. Counts the created and updated members into ``result``."""
    now = timezone.now()
    people = find_people(rows, turn)
    plan = Plan(now=now, people=people)
    # A membership can exist only where the store member id is a known identity.
    owners, row_keys = people.owners, people.row_keys
    known = [i for p in people.persons for i in p.rows if row_keys[i][0] in owners]
    existing = _memberships(ctx.store, [rows[i].record.store_member_id for i in known])
    for person in people.persons:
        created_here = person.member_id is None
        for position, index in enumerate(person.rows):
            row, fresh = rows[index], people.new_keys[index]
            plan.identities.extend((person, kind, value) for kind, value in fresh)
            if created_here and position == 0:
                _create(plan, person, row)
                result.created += 1
                continue
            membership = existing.get(row.record.store_member_id) if row_keys[index][0] in owners else None
            if _update(plan, person, row, membership, created_here=created_here) or fresh:
                result.updated += 1
                plan.updated_ids.append(person)
        if created_here:
            plan.new_people.append(person)
        elif person.changed:
            plan.member_updates.append(person)
    return plan


def _create(plan: Plan, person: Person, row: ParsedRow) -> None:
    """The first row of a person nobody knew: a new member with the row's values."""
    record = row.record
    person.profile = {**_DEFAULTS, **observed_values(record.profile())}
    person.observed_at = record.observed_at
    person.attributes = dict(record.attributes)
    plan.new_memberships.append((person, row))
    plan.created.add(id(person))
    plan.created_ids.append(person)


def _update(
    plan: Plan, person: Person, row: ParsedRow, membership: dict[str, Any] | None, *, created_here: bool
) -> bool:
    """A later row of a person: its profile and attributes by the survivorship rules,
    its store membership added or changed. Whether anything changed."""
    record = row.record
    update = update_from_record(
        profile=person.profile,
        observed_at=person.observed_at,
        attributes=person.attributes,
        record_profile=observed_values(record.profile()),
        record_observed_at=record.observed_at,
        record_attributes=record.attributes,
    )
    changed = bool(update.fields or update.attributes is not None)
    if changed:
        # What resolve_store_record saves: the survivorship time moves with a save.
        person.profile.update(update.fields)
        if update.attributes is not None:
            person.attributes = update.attributes
        person.observed_at = update.observed_at
        if not created_here:
            person.changed = True
    if membership is None:
        plan.new_memberships.append((person, row))
        return True
    updates = membership_changes(
        membership, member_id=person.member_id, joined_at=record.joined_at, tier=record.tier, points=record.points,
        profile=stored_profile(record.profile()), observed_at=record.observed_at,
    )  # fmt: skip
    if updates:
        membership.update(updates)
        if not any(m is membership for m, _ in plan.membership_updates[-1:]):
            plan.membership_updates.append((membership, person))
        return True
    return changed


def _memberships(store: Store, store_member_ids: list[str]) -> dict[str, dict[str, Any]]:
    """This store's memberships of these member ids (only existing members can have one)."""
    if not store_member_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT s.id, s.member_id, s.store_member_id, s.joined_at, s.tier, s.points, s.profile,
                       s.profile_observed_at
                FROM {StoreMembership._meta.db_table} s
                JOIN unnest(string_to_array(%s, E'\\x1f')) AS x(id) ON s.store_member_id = x.id
                WHERE s.store_id = %s""",  # noqa: S608
            ["\x1f".join(store_member_ids), store.pk],
        )
        return {
            smid: {"id": pk, "member_id": member_id, "joined_at": joined_at, "tier": tier, "points": points,
                   "profile": json.loads(profile) if isinstance(profile, str) else profile,
                   "profile_observed_at": observed}
            for pk, member_id, smid, joined_at, tier, points, profile, observed in cursor.fetchall()
        }  # fmt: skip

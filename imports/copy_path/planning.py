"""Who is who in a chunk of the COPY path, and which rows go late or row by row.

1. Look up who owns each identity of the chunk (one join on the unique (kind, value)
   index); rows that share a key or a member with the chunk before us, while it has not
   committed, are *late* (``Turn.pending``).
2. Replay the chunk in file order over a union-find of its rows and those members. A row
   that touches one person (a member, or earlier rows) joins them; a row that links two
   would be a merge under the row-by-row rules, so its whole group goes row by row
   (``resolve_store_record``, which writes the MergeEvent). So does a row linking a
   never-merge pair: the same path decides what it joins and what stays apart
   (``members.kept_apart``), so that rule has one home and the paths cannot disagree.
   Groups that touch a merged or erased member go that way too.
3. Lock the members of the other groups in id order, as ``resolve_store_record`` does,
   and load their profiles: each group becomes one ``Person``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from members.identities import erased_keys as erased_keys_of
from members.models import Identity, Member

from ..rows import ParsedRow
from .turns import Retry, Touched, Turn

Key = tuple[str, str]
PROFILE = Member.PROFILE_FIELDS  # name, gender, birth_date, province, city, locale, phone, email
LATE_ROWS_MIN = 50


class Person:
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
class People:
    """The persons of a chunk and the rows that are not theirs to plan."""

    touched: Touched
    persons: list[Person]
    row_keys: list[list[Key]]  # per row: its identity keys, the store member id's first
    new_keys: list[list[Key]]  # per row: its keys neither a member nor an earlier row has
    owners: dict[Key, int]  # identity key → the member that owns it
    fallback_rows: list[int]  # rows that go row by row in this chunk's transaction
    late_rows: list[int]  # rows that wait for the chunk before us (``Turn.pending``)


@dataclass
class _LookUp:
    owners: dict[Key, int]
    erased_hits: set[Key]  # identity keys of the chunk that belong to erased people
    late_keys: set[Key]
    late_members: set[int]
    pending: Touched | None


def find_people(rows: list[ParsedRow], turn: Turn) -> People:
    """Steps 1 to 3 of the module's docstring, in the chunk's transaction."""
    row_keys = [row.record.identity_keys() for row in rows]
    key_set = {key for keys in row_keys for key in keys}
    found = _look_up(row_keys, key_set, turn)
    found_ids = set(found.owners.values())
    groups = _Groups(found.owners)
    flagged, new_keys = groups.replay(row_keys, found.erased_hits)
    late_roots = {groups.find(member_id) for member_id in found.late_members}
    if found.late_keys:
        late_roots.update(
            groups.find(-(index + 1)) for index, keys in enumerate(row_keys) if not found.late_keys.isdisjoint(keys)
        )
    # Lock the members we plan (not those of late rows: the chunk before us may hold
    # their locks; late rows take them after its commit).
    member_ids = sorted(m for m in found_ids if groups.find(m) not in late_roots) if late_roots else sorted(found_ids)
    members = _lock(member_ids, found.owners)
    fallback_roots = {groups.find(node) for node in flagged}
    for member_id, info in members.items():
        if info[0] != Member.Status.ACTIVE:
            fallback_roots.add(groups.find(member_id))

    persons: list[Person] = []
    fallback_rows: list[int] = []
    late_rows: list[int] = []
    for root, indexes in groups.of_rows(len(rows)).items():
        if root in late_roots:
            late_rows.extend(indexes)
            continue
        if root in fallback_roots:
            fallback_rows.extend(indexes)
            continue
        if root > 0:
            _status, locale, attrs, observed, profile = members[root]
            person = Person(root, dict(zip(PROFILE, profile, strict=True)), observed, dict(attrs), locale or "")
        else:
            person = Person()
        person.rows = indexes
        persons.append(person)
    return People(
        touched=_touched(key_set, found_ids, found.pending if late_rows else None),
        persons=persons,
        row_keys=row_keys,
        new_keys=new_keys,
        owners=found.owners,
        fallback_rows=fallback_rows,
        late_rows=late_rows,
    )


def _look_up(row_keys: list[list[Key]], key_set: set[Key], turn: Turn) -> _LookUp:
    """Who owns the chunk's keys (erased people's apart), and which keys and members the
    chunk before us still holds. Past ``late_limit`` rows that depend on it, we wait for
    its commit instead."""
    limit = late_limit(len(row_keys))
    pending = turn.pending()
    late_keys: set[Key] = set()
    if pending is not None:
        late_keys = key_set & pending.keys
        if late_keys and _rows_naming(row_keys, late_keys) > limit:
            turn.wait_for_predecessor()
            pending, late_keys = None, set()
    # Identities of people erased at their request are stored as keyed hashes; a row that
    # names one is refused by resolve_store_record, so its group takes that path.
    all_keys = list(key_set)  # any order: the look-up is a join, locks go by member id
    erased_keys = erased_keys_of(all_keys)
    lookup = [*all_keys, *erased_keys]
    with connection.cursor() as cursor:
        owners = owners_of(cursor, lookup)
        late_members: set[int] = set()
        if pending is not None:
            late_members = pending.members.intersection(owners.values())
            if late_members and _rows_naming(row_keys, {k for k, m in owners.items() if m in late_members}) > limit:
                turn.wait_for_predecessor()
                late_members = set()
                owners = owners_of(cursor, lookup)
    return _LookUp(
        owners={key: member_id for key, member_id in owners.items() if key not in erased_keys},
        erased_hits={erased_keys[key] for key in owners if key in erased_keys},
        late_keys=late_keys,
        late_members=late_members,
        pending=pending,
    )


def owners_of(cursor: Any, keys: list[Key]) -> dict[Key, int]:
    """The member owning each of ``keys`` that has one."""
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


class _Groups:
    """A union-find over the chunk's rows and the members they name. Nodes: a member is
    its (positive) id, row i is -(i + 1). A member node stays the root, so a group's
    member is its root."""

    def __init__(self, owners: dict[Key, int]) -> None:
        self.parent: dict[int, int] = {}
        self.key_node: dict[Key, int] = {}
        for key, member_id in owners.items():
            self.parent[member_id] = member_id
            self.key_node[key] = member_id

    def find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def replay(self, row_keys: list[list[Key]], erased_hits: set[Key]) -> tuple[list[int], list[list[Key]]]:
        """Join each row, in file order, to the groups its keys reach; returns the rows
        that link two groups or name an erased person (``flagged``: their groups go row
        by row) and each row's keys that nobody had before it."""
        parent, key_node, find = self.parent, self.key_node, self.find
        flagged: list[int] = []
        new_keys: list[list[Key]] = []
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
        return flagged, new_keys

    def of_rows(self, count: int) -> dict[int, list[int]]:
        """Root → the indexes of its rows, groups in the order of their first row."""
        groups: dict[int, list[int]] = {}
        for index in range(count):
            root = self.find(-(index + 1))
            if root in groups:
                groups[root].append(index)
            else:
                groups[root] = [index]
        return groups


def _lock(member_ids: list[int], owners: dict[Key, int]) -> dict[int, tuple]:
    """Lock ``member_ids`` in id order, as resolve_store_record does, then check nobody
    moved their identities meanwhile; returns each one's status, locale, attributes,
    survivorship time and profile values."""
    members: dict[int, tuple] = {}
    if not member_ids:
        return members
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
        if owners_of(cursor, owned) != {key: owners[key] for key in owned}:
            raise Retry  # identities moved between our read and the lock
    return members


def _rows_naming(row_keys: list[list[Key]], keys: set[Key]) -> int:
    return sum(1 for row in row_keys if not keys.isdisjoint(row))


def late_limit(rows: int) -> int:
    """Late rows go row by row (a dozen queries each): beyond this many, a chunk waits
    for the one before it instead."""
    return max(LATE_ROWS_MIN, rows // 100)


def _touched(keys: set[Key], members: set[int], pending: Touched | None) -> Touched:
    """Our keys and found members; with late rows, also those of the chunk before us:
    after its commit our late rows may reach the people it created or changed, which our
    successor must then treat as ours."""
    if pending is None:
        return Touched(keys=keys, members=members)
    return Touched(keys=keys | pending.keys, members=members | pending.members)

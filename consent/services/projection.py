"""The ConsentState projection rebuilt from the ledger (DESIGN.md ⚑: it must always equal
a fold of the ledger), for one member after a merge or for everyone, and the check that
it does: every column of every row, plus rows missing on either side."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from members.models import Brand, Member

from ..models import (
    ConsentEvent,
    ConsentState,
    Purpose,
)

# The projection's columns: the key of a row and what the fold decides for it. Every
# column of ConsentState but its id is in one of the two (a test holds the model to
# it), so a column added to the model cannot escape ``check_projection``.
KEY = ("member_id", "brand_id", "purpose_id", "channel")
VALUES = ("action", "occurred_at", "event_id", "by_guardian")
COLUMNS = KEY + VALUES

# --- Projection rebuilds ---------------------------------------------------------------


def _fold_select(member_filter: str) -> str:
    """SELECT of the fold, one row per canonical member × brand × purpose × channel with
    the state's ``COLUMNS``: the event latest by (occurred_at, id). Window functions work
    on PostgreSQL and SQLite alike."""
    events = ConsentEvent._meta.db_table
    members = Member._meta.db_table
    return f"""
        SELECT canonical AS member_id, brand_id, purpose_id, channel, action, occurred_at, id AS event_id,
               by_guardian FROM (
          SELECT COALESCE(m.merged_into_id, m.id) AS canonical, e.brand_id, e.purpose_id, e.channel,
                 e.action, e.occurred_at, e.id, e.by_guardian,
                 ROW_NUMBER() OVER (
                   PARTITION BY COALESCE(m.merged_into_id, m.id), e.brand_id, e.purpose_id, e.channel
                   ORDER BY e.occurred_at DESC, e.id DESC) AS rn
          FROM {events} e JOIN {members} m ON m.id = e.member_id
          WHERE {member_filter}
        ) ranked WHERE rn = 1
    """  # noqa: S608 - table names and a fixed filter only


def _rebuild(member_filter: str, state_filter: str, params: list[Any]) -> int:
    states = ConsentState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {states} WHERE {state_filter}", params)  # noqa: S608
        cursor.execute(f"INSERT INTO {states} ({', '.join(COLUMNS)}) " + _fold_select(member_filter), params)
        return max(cursor.rowcount, 0)


@transaction.atomic
def rebuild_consent_state(*, member_ids: list[int] | None = None) -> int:
    """Recompute ConsentState from the ledger, set-based: for everyone, or for the people
    (canonical members) given. Readers see the old rows until the transaction commits."""
    if member_ids is None:
        return _rebuild("1 = 1", "1 = 1", [])
    ids = sorted({int(pk) for pk in member_ids})
    if not ids:
        return 0
    marks = ", ".join(["%s"] * len(ids))
    return _rebuild(
        f"COALESCE(m.merged_into_id, m.id) IN ({marks})",
        f"member_id IN ({marks})",
        ids,  # the same ids for the single filter of each statement
    )


# --- The check: state against the fold ---------------------------------------------------


@dataclass(frozen=True)
class StateDifference:
    """One key where the state and the fold disagree. ``state`` or ``ledger`` is None when
    that side has no row (a state row missing, or one the ledger does not explain)."""

    member_id: int
    brand_id: int
    purpose_id: int
    channel: str
    state: dict[str, Any] | None
    ledger: dict[str, Any] | None

    @property
    def fields(self) -> list[str]:
        """The columns that differ; every value column when a side has no row."""
        if self.state is None or self.ledger is None:
            return list(VALUES)
        return [name for name in VALUES if self.state[name] != self.ledger[name]]

    def describe(self, brands: dict[int, str] | None = None, purposes: dict[int, str] | None = None) -> str:
        brand = (brands or {}).get(self.brand_id)
        purpose = (purposes or {}).get(self.purpose_id)
        where = (
            f"member {self.member_id}, brand {brand or self.brand_id}, purpose {purpose or self.purpose_id}, "
            f"channel {self.channel or '-'}"
        )
        if self.state is None:
            return f"{where}: no state row; the ledger says {_values(self.ledger)}"
        if self.ledger is None:
            return f"{where}: state row {_values(self.state)} but no event in the ledger"
        changed = ", ".join(
            f"{name} {_shown(self.state[name])} (ledger: {_shown(self.ledger[name])})" for name in self.fields
        )
        return f"{where}: {changed}"


def row_count(n: int) -> str:
    """A number of rows in words, for the commands' messages: 1 row, 3 rows."""
    return f"{n} row" if n == 1 else f"{n} rows"


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def _values(side: dict[str, Any] | None) -> str:
    return " ".join(f"{name}={_shown(value)}" for name, value in (side or {}).items())


@dataclass(frozen=True)
class ProjectionCheck:
    """How many keys differ between ConsentState and the fold, and the first of them."""

    count: int
    differences: list[StateDifference]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return self.count == 0


def _comparison_sql() -> str:
    """The symmetric difference of state and fold, in one statement: both sides stacked
    (``UNION ALL``) and grouped by every column, so a row present on both sides alike
    makes a group of two and drops out (``HAVING COUNT(*) = 1``: what ``EXCEPT`` both
    ways leaves, from one read of each side). The rest is grouped by key, so a key
    changed in a column comes back as one row with both sides' values, a missing row
    with nulls for the state and an unexplained row with nulls for the ledger; the
    window counts every differing key before ``LIMIT`` keeps the first ones. Plain
    SQL-92 plus a window function: SQLite of any version Django supports and PostgreSQL.
    Booleans become 0/1 because PostgreSQL has no ``MAX`` of a boolean."""
    states = ConsentState._meta.db_table
    key = ", ".join(KEY)
    columns = ", ".join([*KEY, "action", "occurred_at", "event_id"])
    guardian = "CASE WHEN by_guardian THEN 1 ELSE 0 END AS by_guardian"
    per_side = ", ".join(
        f"MAX(CASE WHEN side = {side} THEN {name} END) AS {prefix}_{name}"
        for side, prefix in ((1, "ledger"), (2, "state"))
        for name in ("side", *VALUES)
    )
    return f"""
        SELECT {key}, {per_side}, COUNT(*) OVER () AS differing FROM (
          SELECT {columns}, by_guardian, MIN(side) AS side FROM (
            SELECT 1 AS side, {columns}, {guardian} FROM ({_fold_select("1 = 1")}) fold
            UNION ALL
            SELECT 2 AS side, {columns}, {guardian} FROM {states}
          ) both_sides
          GROUP BY {columns}, by_guardian
          HAVING COUNT(*) = 1
        ) unmatched
        GROUP BY {key}
        ORDER BY {key}
        LIMIT %s
    """  # noqa: S608 - table and column names only


def check_projection(*, limit: int = 20) -> ProjectionCheck:
    """Compare every column of every ConsentState row with a fresh fold of the ledger, in
    one statement (one snapshot, so concurrent appends, which move ledger and state in
    one transaction, never show up as differences). Changes nothing. Returns the number
    of differing keys and the first ``limit`` of them by (member, brand, purpose, channel)."""
    k, width = len(KEY), len(VALUES) + 1  # a row: the key, then per side "present" and VALUES
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A whole-ledger comparison is hash work. With stale statistics (right after a
            # bulk import) PostgreSQL picked, for the earlier check of this kind, nested
            # loops that probe per folded row: measured > 5 min instead of 0.9 s on
            # 269,000 events. Off for this transaction only.
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
        cursor.execute(_comparison_sql(), [max(limit, 1)])
        rows = cursor.fetchall()
    differences = []
    for row in rows:
        member_id, brand_id, purpose_id, channel = row[:k]
        ledger_side, state_side = row[k : k + width], row[k + width : k + 2 * width]
        differences.append(
            StateDifference(member_id, brand_id, purpose_id, channel, _side(state_side), _side(ledger_side))
        )
    count = rows[0][-1] if rows else 0
    differences = differences[:limit]
    return ProjectionCheck(count, differences, _describe(differences))


def _side(values: tuple) -> dict[str, Any] | None:
    present, *rest = values
    if present is None:
        return None
    side = dict(zip(VALUES, rest, strict=True))
    side["by_guardian"] = bool(side["by_guardian"])
    return side


def _describe(differences: list[StateDifference]) -> list[str]:
    """Lines naming each difference, with brand and purpose codes where they exist."""
    if not differences:
        return []
    brands = dict(Brand.objects.filter(pk__in={d.brand_id for d in differences}).values_list("pk", "code"))
    purposes = dict(Purpose.objects.filter(pk__in={d.purpose_id for d in differences}).values_list("pk", "code"))
    return [d.describe(brands, purposes) for d in differences]


def state_differences(limit: int = 20) -> list[str]:
    """The first ``limit`` differences between ConsentState and the fold, one line each;
    empty when the state is right (``check_projection`` has the count too)."""
    return check_projection(limit=limit).lines

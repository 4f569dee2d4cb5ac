"""The ConsentState projection rebuilt from the ledger (DESIGN.md ⚑: it must always equal
a fold of the ledger), for one member after a merge or for everyone."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from members.models import Member

from ..models import (
    ConsentEvent,
    ConsentState,
)

# --- Projection rebuilds ---------------------------------------------------------------


def _fold_select(member_filter: str) -> str:
    """SELECT of the fold: per canonical member × brand × purpose × channel, the event
    latest by (occurred_at, id). Window functions work on PostgreSQL and SQLite alike."""
    events = ConsentEvent._meta.db_table
    members = Member._meta.db_table
    return f"""
        SELECT canonical, brand_id, purpose_id, channel, action, occurred_at, id, by_guardian FROM (
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
        cursor.execute(
            f"INSERT INTO {states} (member_id, brand_id, purpose_id, channel, action, occurred_at, event_id, by_guardian) "
            + _fold_select(member_filter),
            params,
        )
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


def state_differences(limit: int = 20) -> list[str]:
    """Rows where ConsentState and a fresh fold of the ledger disagree (for --check)."""
    states = ConsentState._meta.db_table
    sql = f"""
        SELECT f.canonical, f.purpose_id, f.channel, f.id, s.event_id FROM ({_fold_select("1 = 1")}) f
        LEFT JOIN {states} s ON s.member_id = f.canonical AND s.brand_id = f.brand_id
          AND s.purpose_id = f.purpose_id AND s.channel = f.channel
        WHERE s.event_id IS NULL OR s.event_id <> f.id
    """  # noqa: S608
    extra = f"""
        SELECT COUNT(*) FROM {states} s
    """  # noqa: S608
    out = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A whole-ledger comparison is hash-join work. With stale statistics (right after
            # a bulk import) and the usual under-estimate of "rn = 1", PostgreSQL picks a
            # nested loop that probes the states once per folded row: measured > 5 min
            # instead of 0.9 s on 269,000 events. Off for this transaction only.
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
        cursor.execute(sql)
        for canonical, purpose_id, channel, fold_event, state_event in cursor.fetchmany(limit):
            out.append(
                f"member {canonical} purpose {purpose_id} channel {channel or '-'}: "
                f"ledger says event {fold_event}, state says {state_event or 'nothing'}"
            )
        cursor.execute(extra)
        state_rows = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM ({_fold_select('1 = 1')}) f")  # noqa: S608
        fold_rows = cursor.fetchone()[0]
    if state_rows != fold_rows and not out:
        out.append(f"{state_rows} state rows but the ledger folds to {fold_rows}: some states have no events")
    return out

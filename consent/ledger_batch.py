"""Appending many events at once (bulk imports), with the same chain and projection rules
as ``ledger.append``.

On PostgreSQL: lock the chain heads of the members involved, compute seq, prev_hash and
hash in Python exactly as ``ledger.content_of`` and ``ledger.chain_hash`` define them
(so ``verify_consent_ledger`` recomputes the same hashes), COPY the events, move the heads,
and fold the new events into ConsentState with the rule of ``append``: an event moves the
state only if its ``occurred_at`` is not older than the state's. Elsewhere it appends one
event after another through ``ledger.append``.

Events are appended in the order given; callers pass them in the order the people acted
or the file lists them. No ``consent_changed`` signal is sent (imports send no receipts).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction
from django.utils import timezone

from . import ledger
from .models import ChainHead, ConsentEvent, ConsentState, canonical_json

EVENT_COLUMNS = (
    "id", "member_id", "brand_id", "purpose_id", "channel", "action", "occurred_at", "recorded_at", "source_type",
    "source_ref", "store_id", "notice_id", "evidence", "by_guardian", "external_id", "seq", "prev_hash", "hash",
)  # fmt: skip


def _evidence_text(event: ConsentEvent) -> str:
    text = getattr(event, "_evidence_text", None)
    if text is None:
        text = event._evidence_text = canonical_json(event.evidence or {})
    return text


@transaction.atomic
def append_many(events: Sequence[ConsentEvent]) -> int:
    """Append ``events`` (unsaved, validated by the caller, external ids not yet stored)
    to their members' chains; returns how many of them moved ConsentState (as the sum of
    ``ledger.append``'s answers would)."""
    if not events:
        return 0
    if connection.vendor != "postgresql":
        return sum(ledger.append(event) for event in events)
    return _append_many_postgres(events)


def _append_many_postgres(events: Sequence[ConsentEvent]) -> int:
    heads_table, events_table = ChainHead._meta.db_table, ConsentEvent._meta.db_table
    states_table = ConsentState._meta.db_table
    member_ids = sorted({e.member_id for e in events})
    recorded_at = timezone.now()
    with connection.cursor() as cursor:
        # The head rows are the per-member writer lock of ``ledger.append``: taking them in
        # id order serialises us with single appends and never deadlocks with another batch.
        cursor.execute(
            f"""SELECT h.member_id, h.seq, h.hash FROM {heads_table} h JOIN unnest(%s::bigint[]) AS m(id)
                ON h.member_id = m.id ORDER BY h.member_id FOR UPDATE OF h""",  # noqa: S608
            [member_ids],
        )
        heads = {member_id: (seq, hash_) for member_id, seq, hash_ in cursor.fetchall()}
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [events_table, len(events)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        states_key = {(e.member_id, e.brand_id, e.purpose_id, e.channel) for e in events}
        brand_ids = sorted({e.brand_id for e in events})
        states = {}
        for brand_id in brand_ids:
            # A join on the member ids, so the planner walks the unique (member, brand, …)
            # index even when its statistics predate a big import.
            cursor.execute(
                f"""SELECT s.member_id, s.brand_id, s.purpose_id, s.channel, s.occurred_at FROM {states_table} s
                    JOIN unnest(%s::bigint[]) AS m(id) ON s.member_id = m.id WHERE s.brand_id = %s""",  # noqa: S608
                [member_ids, brand_id],
            )
            states.update({tuple(row[:4]): row[4] for row in cursor.fetchall() if tuple(row[:4]) in states_key})

        changed: dict[tuple, ConsentEvent] = {}
        last_prev: dict[int, str] = {}
        moved = 0
        for event, pk in zip(events, ids, strict=True):
            if event.recorded_at is None:
                event.recorded_at = recorded_at
            seq, prev = heads.get(event.member_id, (0, ledger.GENESIS))
            event.pk, event.seq, event.prev_hash = pk, seq + 1, prev
            event.hash = ledger.chain_hash(prev, ledger._prefix_of(event) + str(event.seq))
            heads[event.member_id] = (event.seq, event.hash)
            last_prev[event.member_id] = prev
            key = (event.member_id, event.brand_id, event.purpose_id, event.channel)
            current = states.get(key)
            if current is None or current <= event.occurred_at:
                states[key] = event.occurred_at
                changed[key] = event
                moved += 1
            event._state.adding = False
            event._state.db = connection.alias

        raw = cursor.cursor
        with raw.copy(f"COPY {events_table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for e in events:
                copy.write_row(
                    (
                        e.pk, e.member_id, e.brand_id, e.purpose_id, e.channel, e.action, e.occurred_at,
                        e.recorded_at, e.source_type, e.source_ref, e.store_id, e.notice_id, _evidence_text(e),
                        e.by_guardian, e.external_id, e.seq, e.prev_hash, e.hash,
                    )
                )  # fmt: skip
        touched = sorted({e.member_id for e in events})
        cursor.execute(
            f"""INSERT INTO {heads_table} AS h (member_id, seq, prev_hash, hash)
                SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::text[], %s::text[])
                ON CONFLICT (member_id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash,
                  hash = excluded.hash""",  # noqa: S608
            [
                touched,
                [heads[m][0] for m in touched],
                [last_prev[m] for m in touched],
                [heads[m][1] for m in touched],
            ],
        )
        if changed:
            rows = list(changed.values())
            cursor.execute(
                f"""INSERT INTO {states_table} AS s (member_id, brand_id, purpose_id, channel, action, occurred_at,
                      event_id, by_guardian)
                    SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],
                                         %s::timestamptz[], %s::bigint[], %s::boolean[])
                    ON CONFLICT (member_id, brand_id, purpose_id, channel) DO UPDATE SET
                      action = excluded.action, occurred_at = excluded.occurred_at,
                      event_id = excluded.event_id, by_guardian = excluded.by_guardian
                    WHERE s.occurred_at <= excluded.occurred_at""",  # noqa: S608
                [
                    [e.member_id for e in rows],
                    [e.brand_id for e in rows],
                    [e.purpose_id for e in rows],
                    [e.channel for e in rows],
                    [e.action for e in rows],
                    [e.occurred_at for e in rows],
                    [e.pk for e in rows],
                    [e.by_guardian for e in rows],
                ],
            )
        return moved

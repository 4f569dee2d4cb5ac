"""Appending many events at once (API batches, bulk imports), with the same chain and
projection rules as ``ledger.append``.

On PostgreSQL: lock the chain heads of the members involved, compute seq, prev_hash and
hash in Python exactly as ``ledger.content_prefix`` and ``ledger.chain_hash`` define them
(so ``verify_consent_ledger`` recomputes the same hashes), write the events, move the heads
(one statement for a batch of up to ``ONE_STATEMENT_MAX`` events, COPY for more), and fold the new events into ConsentState with the rule of ``append``: an event moves the
state only if its ``occurred_at`` is not older than the state's. Elsewhere it appends one
event after another through ``ledger.append``.

Events are appended in the order given; callers pass them in the order the people acted
or the file lists them. No signal is sent here: ``record_consents`` sends
``consent_changed`` per event, the member import ``consent_appended`` per chunk.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import islice

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from . import ledger
from .models import ChainHead, ConsentEvent, ConsentState, ExternalEventId

EVENT_COLUMNS = (
    "id", "member_id", "brand_id", "purpose_id", "channel", "action", "occurred_at", "recorded_at", "source_type",
    "source_ref", "store_id", "notice_id", "evidence", "by_guardian", "external_id", "seq", "prev_hash", "hash",
)  # fmt: skip


@dataclass(slots=True)
class NewEvent:
    """An event to append, lighter than a model instance (a million of them per import).
    ``evidence`` is the canonical JSON text (``consent.models.canonical_json``)."""

    member_id: int
    brand_id: int
    purpose_id: int
    channel: str
    action: str
    occurred_at: dt.datetime
    source_type: str
    source_ref: str
    store_id: int | None
    notice_id: int | None
    evidence: str
    external_id: str | None
    by_guardian: bool = False
    recorded_at: dt.datetime | None = None
    pk: int | None = None
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""
    # Set by ``append_many``: whether this event moved ConsentState when it was appended.
    state_changed: bool = False

    def prefix(self) -> str:
        return ledger.content_prefix(
            self.member_id, self.brand_id, self.purpose_id, self.channel, self.action, self.occurred_at,
            self.recorded_at, self.source_type, self.source_ref, self.store_id, self.notice_id, self.by_guardian,
            self.external_id, self.evidence,
        )  # fmt: skip


# No savepoint of its own: every caller (``record_consents``, the import's chunk) runs it
# in a transaction that it retries whole on an IntegrityError, so a savepoint would only
# cost two round trips per batch.
@transaction.atomic(savepoint=False)
def append_many(events: Sequence[NewEvent], *, fresh_members: Collection[int] = ()) -> int:
    """Append ``events`` (validated by the caller, external ids not stored yet) to their
    members' chains; returns how many of them moved ConsentState (as the sum of
    ``ledger.append``'s answers would). ``fresh_members``: members the caller created in
    this transaction, so no other transaction can see them and they have no chain head
    or state yet: on PostgreSQL theirs are not looked up or locked, and are inserted with
    COPY instead of upserted (an import's new members, most of a first import)."""
    if not events:
        return 0
    now = timezone.now()
    for event in events:
        if event.recorded_at is None:
            event.recorded_at = now
    if connection.vendor != "postgresql":
        return sum(_append_one(event) for event in events)
    return _append_many_postgres(events, frozenset(fresh_members))


def _append_one(new: NewEvent) -> bool:
    event = ConsentEvent(
        member_id=new.member_id, brand_id=new.brand_id, purpose_id=new.purpose_id, channel=new.channel,
        action=new.action, occurred_at=new.occurred_at, recorded_at=new.recorded_at, source_type=new.source_type,
        source_ref=new.source_ref, store_id=new.store_id, notice_id=new.notice_id, by_guardian=new.by_guardian,
        external_id=new.external_id,
    )  # fmt: skip
    event._evidence_text = new.evidence
    changed = ledger.append(event)
    new.pk, new.seq, new.prev_hash, new.hash = event.pk, event.seq, event.prev_hash, event.hash
    new.state_changed = changed
    return changed


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def esc(value: str | None) -> str:
    """A text value in COPY's text format. Tab, newline and carriage return are not
    printable, so a printable value without a backslash needs no escaping: two scans in
    C, four times quicker than testing each character against a set (three million
    values per million-row import)."""
    if value is None:
        return "\\N"
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def copy_text(value: object) -> str:
    """Any value in COPY's text format (faster than psycopg adapting each value)."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return esc(value)
    if isinstance(value, dt.date):  # dates and aware datetimes
        return value.isoformat()
    return str(value)


def copy_lines(cursor, table: str, columns: Sequence[str], lines: Iterable[str]) -> None:
    """COPY pre-formatted text lines (values escaped with ``esc``/``copy_text``) through a
    raw psycopg cursor; errors come out as Django's (a unique violation is an
    ``IntegrityError``, which callers retry)."""
    rest = iter(lines)
    with connection.wrap_database_errors, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        # Blocks of 5,000 lines taken in C (islice), not appended one by one in Python:
        # an import writes about seven million lines per million rows.
        while block := list(islice(rest, 5000)):
            block.append("")  # the last line's newline
            copy.write("\n".join(block))


def id_list(ids: Iterable[int]) -> str:
    """Integers as one text parameter (``string_to_array(%s, ',')::bigint[]``): binding a
    Python list costs a conversion per element."""
    return ",".join(map(str, ids))


def reserve_ids(cursor, table: str, count: int) -> list[int]:
    """``count`` new primary keys of ``table`` from its sequence, ascending. The sequence
    is looked up once (OFFSET 0 keeps the planner from inlining the look-up):
    ``nextval(pg_get_serial_sequence(...))`` looks it up again for every key, which costs
    several times the ``nextval`` itself (bench/README.md, "Figures that were in code")."""
    cursor.execute(
        "SELECT nextval(q.s) FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS s OFFSET 0) q, "
        "generate_series(1, %s)",
        [table, count],
    )
    return sorted(row[0] for row in cursor.fetchall())


def temp_table(cursor, name: str, definition: str) -> None:
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({definition})")
    cursor.execute(f"TRUNCATE {name}")


class BatchReferences:
    """Foreign keys of rows written in bulk, checked once per batch instead of once per row.

    PostgreSQL checks a foreign key with a trigger per inserted row: a query that finds
    and locks (FOR KEY SHARE) the referenced row, and for deferred constraints a queued
    event per row first. For an import that is a third of the server's work (bench/import:
    about a dozen checks per file row, most of them against the same store, brand and purposes). Inside
    this block, where the role may set it, ``session_replication_role`` is ``replica``, so
    those triggers do not fire for the statements in it; on leaving it the caller's
    references are checked the way the triggers would: ``lock`` parents are looked up and
    locked FOR KEY SHARE in one statement per table (nobody can delete them until we
    commit), ``exist`` parents (rows this transaction created or already holds FOR
    UPDATE) are counted. A missing parent raises ``IntegrityError``, as the trigger would,
    and the transaction rolls back. Only writes go in the block, never a delete or an
    update of a parent key, and the ledger's own append-only triggers fire on UPDATE and
    DELETE, which no statement in the block does. Without the privilege (neither superuser
    nor ``GRANT SET ON PARAMETER session_replication_role``, PostgreSQL 15+) the triggers
    run as always and the block only costs the privilege look-up, once per connection
    settings."""

    def __init__(self) -> None:
        self.active = False
        self._lock: dict[type[models.Model], set[int]] = {}
        self._exist: dict[type[models.Model], set[int]] = {}

    def lock(self, model: type[models.Model], ids: Iterable[int | None]) -> None:
        _add(self._lock, model, ids)

    def exist(self, model: type[models.Model], ids: Iterable[int | None]) -> None:
        _add(self._exist, model, ids)

    def __enter__(self) -> BatchReferences:
        if connection.vendor == "postgresql" and connection.in_atomic_block and may_skip_reference_triggers():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
            self.active = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.active or exc_type is not None:
            return  # an error rolls the transaction (and the SET LOCAL) back
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")
            for model, ids in self._lock.items():
                cursor.execute(
                    f"SELECT id FROM {model._meta.db_table} WHERE id = ANY(string_to_array(%s, ',')::bigint[]) "  # noqa: S608
                    "ORDER BY id FOR KEY SHARE",
                    [id_list(sorted(ids))],
                )
                _require(model, len(ids), len(cursor.fetchall()))
            for model, ids in self._exist.items():
                cursor.execute(
                    f"SELECT count(*) FROM {model._meta.db_table} t "  # noqa: S608
                    "JOIN unnest(string_to_array(%s, ',')::bigint[]) AS x(id) ON t.id = x.id",
                    [id_list(ids)],
                )
                _require(model, len(ids), cursor.fetchone()[0])


def _add(wanted: dict[type[models.Model], set[int]], model: type[models.Model], ids: Iterable[int | None]) -> None:
    """Note the ids (None is no reference); a table with none gets no statement."""
    found = {i for i in ids if i is not None}
    if found:
        wanted.setdefault(model, set()).update(found)


def _require(model: type[models.Model], wanted: int, found: int) -> None:
    if found != wanted:
        raise IntegrityError(
            f"{wanted - found} of the {model._meta.verbose_name_plural} the batch refers to do not exist (any more)"
        )


def may_skip_reference_triggers() -> bool:
    """Whether this connection's role may set ``session_replication_role``."""
    settings = connection.settings_dict
    return _may_skip(settings["NAME"], settings["USER"], settings["HOST"], str(settings["PORT"]))


@cache
def _may_skip(*_server_and_role: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser') = 'on', current_setting('server_version_num')::int")
        superuser, version = cursor.fetchone()
        if superuser:
            return True
        if version < 150000:
            return False
        cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
        return bool(cursor.fetchone()[0])


HEAD_COLUMNS = ("member_id", "seq", "prev_hash", "hash")
XID_COLUMNS = ("event_id", "brand_id", "external_id", "recorded_at")
STATE_COLUMNS = ("member_id", "brand_id", "purpose_id", "channel", "action", "occurred_at", "event_id", "by_guardian")


def _insert_or_upsert(
    cursor,
    table: str,
    columns: Sequence[str],
    definition: str,
    fresh: frozenset[int],
    rows: Iterable[tuple[int, str]],
    conflict: str,
) -> None:
    """Write (member id, COPY line) rows into ``table``: a fresh member's by COPY, the
    others' through the temp table ``_import_<table>`` (``definition``) and an INSERT with
    ``conflict``."""
    lines: tuple[list[str], list[str]] = ([], [])
    for member_id, line in rows:
        lines[member_id in fresh].append(line)
    raw = cursor.cursor
    if lines[True]:
        copy_lines(raw, table, columns, lines[True])
    if lines[False]:
        temp = f"_import_{table}"
        temp_table(cursor, temp, definition)
        copy_lines(raw, temp, columns, lines[False])
        names = ", ".join(columns)
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp} {conflict}")  # noqa: S608


def _append_many_postgres(events: Sequence[NewEvent], fresh: frozenset[int]) -> int:
    heads_table, events_table = ChainHead._meta.db_table, ConsentEvent._meta.db_table
    states_table = ConsentState._meta.db_table
    member_ids = sorted({e.member_id for e in events if e.member_id not in fresh})
    with connection.cursor() as cursor:
        # The head rows are the per-member writer lock of ``ledger.append``: taking them in
        # id order serialises us with single appends and never deadlocks with another batch.
        # A member without a head yet gets one (seq 0, the genesis hash: what "no head"
        # means), so there is a row to lock and two batches cannot both start a chain at
        # seq 1 (the ledger's unique (member, seq) is per partition only); the head upsert
        # below replaces it. The no-op DO UPDATE locks an existing head and returns its
        # latest committed values in the same statement (a SELECT … FOR UPDATE would not
        # see a head another batch inserted while it waited).
        members_text = id_list(member_ids)
        cursor.execute(
            f"""INSERT INTO {heads_table} AS h (member_id, seq, prev_hash, hash)
                SELECT m.id, 0, '', %s FROM unnest(string_to_array(%s, ',')::bigint[]) AS m(id) ORDER BY m.id
                ON CONFLICT (member_id) DO UPDATE SET seq = h.seq
                RETURNING h.member_id, h.seq, h.hash""",  # noqa: S608
            [ledger.GENESIS, members_text],
        )
        heads = {member_id: (seq, hash_) for member_id, seq, hash_ in cursor.fetchall()}
        ids = reserve_ids(cursor, events_table, len(events))
        states_key = {(e.member_id, e.brand_id, e.purpose_id, e.channel) for e in events}
        states = {}
        for brand_id in sorted({e.brand_id for e in events}):
            # A join on the member ids, so the planner walks the unique (member, brand, …)
            # index even when its statistics predate a big import.
            cursor.execute(
                f"""SELECT s.member_id, s.brand_id, s.purpose_id, s.channel, s.occurred_at FROM {states_table} s
                    JOIN unnest(string_to_array(%s, ',')::bigint[]) AS m(id) ON s.member_id = m.id
                    WHERE s.brand_id = %s""",  # noqa: S608
                [members_text, brand_id],
            )
            states.update({tuple(row[:4]): row[4] for row in cursor.fetchall() if tuple(row[:4]) in states_key})

        changed: dict[tuple, NewEvent] = {}
        last_prev: dict[int, str] = {}
        moved = 0
        for event, pk in zip(events, ids, strict=True):
            seq, prev = heads.get(event.member_id, (0, ledger.GENESIS))
            event.pk, event.seq, event.prev_hash = pk, seq + 1, prev
            event.hash = ledger.chain_hash(prev, event.prefix() + str(event.seq))
            heads[event.member_id] = (event.seq, event.hash)
            last_prev[event.member_id] = prev
            key = (event.member_id, event.brand_id, event.purpose_id, event.channel)
            current = states.get(key)
            if current is None or current <= event.occurred_at:
                states[key] = event.occurred_at
                changed[key] = event
                event.state_changed = True
                moved += 1

        if len(events) <= ONE_STATEMENT_MAX and not fresh:
            _write_json(events, heads, last_prev, changed.values())
            return moved
        raw = cursor.cursor
        recorded = {}
        lines = []
        for e in events:
            if e.recorded_at not in recorded:
                recorded[e.recorded_at] = e.recorded_at.isoformat()
            lines.append(
                f"{e.pk}\t{e.member_id}\t{e.brand_id}\t{e.purpose_id}\t{e.channel}\t{e.action}\t"
                f"{e.occurred_at.isoformat()}\t{recorded[e.recorded_at]}\t{esc(e.source_type)}\t{esc(e.source_ref)}\t"
                f"{copy_text(e.store_id)}\t{copy_text(e.notice_id)}\t{esc(e.evidence)}\t{copy_text(e.by_guardian)}\t"
                f"{esc(e.external_id)}\t{e.seq}\t{e.prev_hash}\t{e.hash}"
            )
        copy_lines(raw, events_table, EVENT_COLUMNS, lines)
        # Their external ids: a unique violation here is the IntegrityError callers retry.
        copy_lines(
            raw, ExternalEventId._meta.db_table, XID_COLUMNS,
            (f"{e.pk}\t{e.brand_id}\t{esc(e.external_id)}\t{recorded[e.recorded_at]}" for e in events if e.external_id),
        )  # fmt: skip
        # Chain heads and states: COPY for fresh members (nothing to meet), an upsert
        # through a temp table for the others.
        _insert_or_upsert(
            cursor, heads_table, HEAD_COLUMNS, "member_id bigint, seq integer, prev_hash text, hash text",
            fresh,
            ((m, f"{m}\t{heads[m][0]}\t{last_prev[m]}\t{heads[m][1]}") for m in sorted(last_prev)),
            "ON CONFLICT (member_id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash, "
            "hash = excluded.hash",
        )  # fmt: skip
        _insert_or_upsert(
            cursor, states_table, STATE_COLUMNS,
            "member_id bigint, brand_id bigint, purpose_id bigint, channel text, action text, "
            "occurred_at timestamptz, event_id bigint, by_guardian boolean",
            fresh,
            (
                (e.member_id, f"{e.member_id}\t{e.brand_id}\t{e.purpose_id}\t{e.channel}\t{e.action}\t"
                              f"{e.occurred_at.isoformat()}\t{e.pk}\t{copy_text(e.by_guardian)}")
                for e in changed.values()
            ),
            "ON CONFLICT (member_id, brand_id, purpose_id, channel) DO UPDATE SET action = excluded.action, "
            "occurred_at = excluded.occurred_at, event_id = excluded.event_id, by_guardian = excluded.by_guardian "
            f"WHERE {states_table}.occurred_at <= excluded.occurred_at",
        )  # fmt: skip
        return moved


# A batch of up to this many events (the API's batches, not an import's chunks) is
# written in one statement: the events, the chain heads and the states each from one
# JSON parameter (``jsonb_array_elements``), in data-modifying CTEs. A COPY through a temp
# table costs four round trips per table (CREATE IF NOT EXISTS, TRUNCATE, COPY,
# INSERT … SELECT) and the TRUNCATE of a temp table rewrites catalog rows; arrays bound
# as parameters cost psycopg a Python call per element. For an import's chunks of
# thousands of events COPY's cheaper per-row parsing wins.
ONE_STATEMENT_MAX = 2000

_SQL_TYPES = {
    "id": "bigint", "member_id": "bigint", "brand_id": "bigint", "purpose_id": "bigint", "channel": "text",
    "action": "text", "occurred_at": "timestamptz", "recorded_at": "timestamptz", "source_type": "text",
    "source_ref": "text", "store_id": "bigint", "notice_id": "bigint", "evidence": "text",
    "by_guardian": "boolean", "external_id": "text", "seq": "integer", "prev_hash": "text", "hash": "text",
    "event_id": "bigint",
}  # fmt: skip


def _rows(columns: Sequence[str], param: str) -> str:
    """SELECT of ``columns`` from the JSON array of arrays in ``param``, positionally."""
    values = ", ".join(f"(r->>{i})::{_SQL_TYPES[c]}" for i, c in enumerate(columns))
    # jsonb: parsed once, then each element is found by position without parsing again.
    return f"SELECT {values} FROM jsonb_array_elements(%({param})s::jsonb) AS rows(r)"  # noqa: S608 - names only


@cache
def _json_write_sql() -> str:
    events, heads, states = ConsentEvent._meta.db_table, ChainHead._meta.db_table, ConsentState._meta.db_table
    xids = ExternalEventId._meta.db_table
    return f"""
        WITH ev AS (
          INSERT INTO {events} ({", ".join(EVENT_COLUMNS)}) {_rows(EVENT_COLUMNS, "events")}
        ), xi AS (
          INSERT INTO {xids} ({", ".join(XID_COLUMNS)}) {_rows(XID_COLUMNS, "xids")}
        ), hd AS (
          INSERT INTO {heads} ({", ".join(HEAD_COLUMNS)}) {_rows(HEAD_COLUMNS, "heads")}
          ON CONFLICT (member_id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash,
            hash = excluded.hash
        ), st AS (
          INSERT INTO {states} AS s ({", ".join(STATE_COLUMNS)}) {_rows(STATE_COLUMNS, "states")}
          ON CONFLICT (member_id, brand_id, purpose_id, channel) DO UPDATE SET action = excluded.action,
            occurred_at = excluded.occurred_at, event_id = excluded.event_id, by_guardian = excluded.by_guardian
          WHERE s.occurred_at <= excluded.occurred_at
        )
        SELECT 1
    """  # noqa: S608 - table and column names only


def _write_json(
    events: Sequence[NewEvent],
    heads: dict[int, tuple[int, str]],
    last_prev: dict[int, str],
    changed: Iterable[NewEvent],
) -> None:
    """The events, the members' new chain heads and the states they move, in one
    statement (``ONE_STATEMENT_MAX``). Foreign keys of rows written by one statement are
    checked at its end, so the states may name the events the same statement inserts.
    Times go as ISO 8601 text with their offset and microseconds: exact."""
    recorded: dict[dt.datetime, str] = {}
    event_rows = []
    for e in events:
        if e.recorded_at not in recorded:
            recorded[e.recorded_at] = e.recorded_at.isoformat()
        event_rows.append(
            (
                e.pk, e.member_id, e.brand_id, e.purpose_id, e.channel, e.action, e.occurred_at.isoformat(),
                recorded[e.recorded_at], e.source_type, e.source_ref, e.store_id, e.notice_id, e.evidence,
                e.by_guardian, e.external_id, e.seq, e.prev_hash, e.hash,
            )
        )  # fmt: skip
    head_rows = [(m, heads[m][0], last_prev[m], heads[m][1]) for m in sorted(last_prev)]
    state_rows = [
        (e.member_id, e.brand_id, e.purpose_id, e.channel, e.action, e.occurred_at.isoformat(), e.pk, e.by_guardian)
        for e in changed
    ]
    xid_rows = [(e.pk, e.brand_id, e.external_id, recorded[e.recorded_at]) for e in events if e.external_id]
    params = {
        "events": json.dumps(event_rows, ensure_ascii=False, separators=(",", ":")),
        "xids": json.dumps(xid_rows, ensure_ascii=False, separators=(",", ":")),
        "heads": json.dumps(head_rows, separators=(",", ":")),
        "states": json.dumps(state_rows, ensure_ascii=False, separators=(",", ":")),
    }
    # Bound on the server (Django's cursors bind on the client) and prepared, like
    # ``ledger.append``'s statement.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
        raw.execute(_json_write_sql(), params, prepare=bool(settings.DB_PREPARED_STATEMENTS))

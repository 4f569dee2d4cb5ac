"""The hash chain: how an event's hash is computed, checkpoints, and verification.

hash = SHA-256(prev_hash + canonical content). The content is a fixed, versioned text
form of every field of the event, so recomputing it from the stored row gives the same
bytes on SQLite and PostgreSQL. Verification streams the ledger in keyset-paginated
batches ordered by (member, seq) and never holds it whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from .models import ChainHead, Checkpoint, CheckpointHead, ConsentEvent, ConsentState, canonical_json

GENESIS = "0" * 64
FORMAT = "cdp-consent-v1"  # bump when the content below changes

# The stored fields that the hash covers, in order. ``evidence`` is canonical JSON.
HASHED_FIELDS = (
    "member_id",
    "seq",
    "brand_id",
    "purpose_id",
    "channel",
    "action",
    "occurred_at",
    "recorded_at",
    "source_type",
    "source_ref",
    "store_id",
    "notice_id",
    "by_guardian",
    "external_id",
    "evidence",
)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def _ts(value: dt.datetime) -> str:
    """Microseconds since the epoch, exactly (integer timedelta arithmetic, no floats).
    Naive values are UTC, as SQLite returns them."""
    return str((value - (_NAIVE_EPOCH if value.tzinfo is None else _EPOCH)) // _MICROSECOND)


def content_of(values: tuple) -> str:
    """Canonical text of an event given its HASHED_FIELDS values. The sequence number
    comes last so PostgreSQL can append it inside the write statement (see ``append``)."""
    return content_prefix(values[0], *values[2:]) + str(values[1])


def content_prefix(
    member_id, brand_id, purpose_id, channel, action, occurred_at, recorded_at, source_type, source_ref,
    store_id, notice_id, by_guardian, external_id, evidence,
) -> str:  # fmt: skip
    """Everything of the content but the sequence number, ending with the separator."""
    return "\x1f".join(
        (
            FORMAT,
            str(member_id),
            str(brand_id),
            str(purpose_id),
            channel,
            action,
            _ts(occurred_at),
            _ts(recorded_at),
            source_type,
            source_ref,
            "" if store_id is None else str(store_id),
            "" if notice_id is None else str(notice_id),
            "1" if by_guardian else "0",
            "" if external_id is None else external_id,
            evidence if isinstance(evidence, str) else canonical_json(evidence or {}),
            "",
        )
    )


def chain_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def hash_event(event: ConsentEvent) -> str:
    return chain_hash(event.prev_hash, content_of(tuple(getattr(event, name) for name in HASHED_FIELDS)))


# --- Checkpoints -----------------------------------------------------------------------


class MerkleBuilder:
    """Merkle root of hex leaf hashes, fed one leaf at a time: keeps one partial node per
    level, so millions of chain heads need a few kilobytes."""

    def __init__(self) -> None:
        self.levels: list[bytes | None] = []
        self.count = 0

    def add(self, leaf: str) -> None:
        node = hashlib.sha256(b"\x00" + leaf.encode()).digest()
        self.count += 1
        for level, partial in enumerate(self.levels):
            if partial is None:
                self.levels[level] = node
                return
            node = hashlib.sha256(b"\x01" + partial + node).digest()
            self.levels[level] = None
        self.levels.append(node)

    def root(self) -> str:
        if self.count == 0:
            return hashlib.sha256(b"empty").hexdigest()
        # Fold what is left from the lowest level up (an odd node is carried upward).
        node: bytes | None = None
        for partial in self.levels:
            if partial is not None:
                node = partial if node is None else hashlib.sha256(b"\x01" + partial + node).digest()
        assert node is not None
        return node.hex()


def merkle_root(leaves: Iterator[str]) -> str:
    builder = MerkleBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def head_leaf(member_id: int, seq: int, hash_: str) -> str:
    return f"{member_id}:{seq}:{hash_}"


def _heads_as_of(checkpoint: Checkpoint) -> Iterator[tuple[int, int, str]]:
    """Each chain's head as fixed by ``checkpoint``: the newest CheckpointHead per member
    among checkpoints up to it, ordered by member."""
    table = CheckpointHead._meta.db_table
    sql = f"""
        SELECT h.member_id, h.seq, h.hash FROM {table} h
        JOIN (SELECT member_id, MAX(checkpoint_id) AS cp FROM {table}
              WHERE checkpoint_id <= %s GROUP BY member_id) latest
          ON latest.member_id = h.member_id AND latest.cp = h.checkpoint_id
        ORDER BY h.member_id
    """  # noqa: S608 - table name only
    with connection.cursor() as cursor:
        cursor.execute(sql, [checkpoint.pk])
        while rows := cursor.fetchmany(5000):
            yield from rows


@transaction.atomic
def create_checkpoint() -> Checkpoint:
    """Fix every chain head now. Stores the heads changed since the previous checkpoint
    and the Merkle root over all heads; cost grows with the changes, not the ledger."""
    previous = Checkpoint.objects.order_by("-pk").first()
    since = previous.last_event_id if previous else 0
    last_event_id = ConsentEvent.objects.aggregate(m=Max("pk"))["m"] or 0
    checkpoint = Checkpoint.objects.create(last_event_id=last_event_id, merkle_root="")
    changed_members = ConsentEvent.objects.filter(pk__gt=since, pk__lte=last_event_id).values("member_id").distinct()
    heads = []
    # The head as of last_event_id: the highest seq among events up to it.
    for member_id, seq, hash_ in (
        ConsentEvent.objects.filter(member_id__in=changed_members, pk__lte=last_event_id)
        .order_by("member_id", "-seq")
        .distinct()
        .values_list("member_id", "seq", "hash")
        .iterator(chunk_size=5000)
    ):
        if heads and heads[-1].member_id == member_id:
            continue
        heads.append(CheckpointHead(checkpoint=checkpoint, member_id=member_id, seq=seq, hash=hash_))
    CheckpointHead.objects.bulk_create(heads, batch_size=5000)
    chains = 0
    events = 0

    def leaves() -> Iterator[str]:
        nonlocal chains, events
        for member_id, seq, hash_ in _heads_as_of(checkpoint):
            chains += 1
            events += seq
            yield head_leaf(member_id, seq, hash_)

    checkpoint.merkle_root = merkle_root(leaves())
    checkpoint.chain_count = chains
    checkpoint.event_count = events
    checkpoint.save(update_fields=["merkle_root", "chain_count", "event_count"])
    return checkpoint


# --- Verification ----------------------------------------------------------------------


@dataclass
class VerificationResult:
    ok: bool
    events_checked: int
    chains_checked: int
    checkpoint_id: int | None
    first_error: str = ""
    first_bad_event_id: int | None = None


def _stream_events(batch: int) -> Iterator[tuple]:
    """Every event as (id, prev_hash, hash, *HASHED_FIELDS), ordered by (member, seq),
    fetched with keyset pagination (a row-value comparison the (member, seq) unique index
    serves) so memory stays flat and no long-running cursor is held. Raw SQL: the ORM's
    per-row conversions would cost more than the hashing."""
    table = ConsentEvent._meta.db_table
    columns = ", ".join(["id", "prev_hash", "hash", *HASHED_FIELDS])
    sql = f"""
        SELECT {columns} FROM {table}
        WHERE (member_id, seq) > (%s, %s)
        ORDER BY member_id, seq
        LIMIT %s
    """  # noqa: S608 - table and column names only
    last_member, last_seq = -1, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [last_member, last_seq, batch])
            page = cursor.fetchall()
        if not page:
            return
        yield from page
        last_member, last_seq = page[-1][3], page[-1][4]


def verify_ledger(*, batch: int = 20000) -> VerificationResult:
    """Recompute every hash and link, and check every chain against the last checkpoint.

    Finds changed fields (hash mismatch), deleted or inserted middle events (broken link
    or sequence gap), and deleted tail events (chain shorter than the checkpoint fixed).
    On PostgreSQL the database recomputes the hashes in one scan (``_verify_postgres``);
    elsewhere Python streams the ledger. Both follow the same rules and messages, and
    the suite runs on both.
    """
    tampered = _first_tampered_notice()
    if tampered:
        checkpoint = Checkpoint.objects.order_by("-pk").first()
        return VerificationResult(False, 0, 0, checkpoint.pk if checkpoint else None, tampered, None)
    if connection.vendor == "postgresql":
        return _verify_postgres()
    return _verify_streaming(batch=batch)


def _first_tampered_notice() -> str:
    """Events point at notices by id; a notice whose text no longer matches the SHA-256
    taken when it was published would change what people are said to have read."""
    from .models import Notice

    for notice in Notice.objects.order_by("pk").iterator(chunk_size=500):
        if not notice.is_intact:
            return f"notice {notice.pk} ({notice.title} v{notice.version}): text does not match its SHA-256"
    return ""


def _content_sql(e: str) -> str:
    """SQL for the bytes ``content_of`` produces, over event alias ``e``."""
    sep = " || chr(31) || "
    parts = [
        "%(format)s",
        f"{e}.member_id::text",
        f"{e}.brand_id::text",
        f"{e}.purpose_id::text",
        f"{e}.channel",
        f"{e}.action",
        f"(EXTRACT(EPOCH FROM {e}.occurred_at) * 1000000)::bigint::text",
        f"(EXTRACT(EPOCH FROM {e}.recorded_at) * 1000000)::bigint::text",
        f"{e}.source_type",
        f"{e}.source_ref",
        f"COALESCE({e}.store_id::text, '')",
        f"COALESCE({e}.notice_id::text, '')",
        f"CASE WHEN {e}.by_guardian THEN '1' ELSE '0' END",
        f"COALESCE({e}.external_id, '')",
        f"{e}.evidence",
        f"{e}.seq::text",
    ]
    return sep.join(parts)


def _verify_postgres() -> VerificationResult:
    events = ConsentEvent._meta.db_table
    scan = f"""
        SELECT COUNT(*) AS events,
               COUNT(*) FILTER (WHERE first_in_chain) AS chains,
               MIN(ARRAY[member_id, seq]) FILTER (WHERE problem IS NOT NULL) AS first_bad
        FROM (
          SELECT e.member_id, e.seq, LAG(e.seq) OVER w IS NULL AS first_in_chain,
                 CASE
                   WHEN e.seq <> COALESCE(LAG(e.seq) OVER w, 0) + 1 THEN 'gap'
                   WHEN e.prev_hash <> COALESCE(LAG(e.hash) OVER w, %(genesis)s) THEN 'link'
                   WHEN e.hash <> encode(sha256(convert_to(e.prev_hash || {_content_sql("e")}, 'UTF8')), 'hex')
                     THEN 'hash'
                 END AS problem
          FROM {events} e
          WINDOW w AS (PARTITION BY e.member_id ORDER BY e.seq)
        ) checked
    """  # noqa: S608 - table name and fixed SQL only
    checkpoint = Checkpoint.objects.order_by("-pk").first()
    checkpoint_id = checkpoint.pk if checkpoint else None
    with connection.cursor() as cursor:
        cursor.execute(scan, {"genesis": GENESIS, "format": FORMAT})
        count, chains, first_bad = cursor.fetchone()
    if first_bad is not None:
        # Name the problem exactly as the streaming check would, from the chain's start.
        member_id, seq = first_bad
        return _describe_chain_problem(member_id, seq, count, chains, checkpoint_id)
    if checkpoint is None:
        return VerificationResult(True, count, chains, None)
    problem = _checkpoint_problem_postgres(checkpoint)
    if problem:
        return VerificationResult(False, count, chains, checkpoint_id, problem, None)
    return VerificationResult(True, count, chains, checkpoint_id)


def _describe_chain_problem(member_id: int, seq: int, count: int, chains: int, checkpoint_id: int | None):
    prev_seq, prev_hash = 0, GENESIS
    fields = ("pk", "prev_hash", "hash", *HASHED_FIELDS)
    for row in ConsentEvent.objects.filter(member_id=member_id, seq__lte=seq).order_by("seq").values_list(*fields):
        event_id, stored_prev, stored_hash, *values = row
        message = _link_problem(event_id, member_id, values[1], prev_seq, stored_prev, prev_hash, stored_hash, values)
        if message:
            return VerificationResult(False, count, chains, checkpoint_id, message, event_id)
        prev_seq, prev_hash = values[1], stored_hash
    return VerificationResult(
        False, count, chains, checkpoint_id, f"member {member_id}: chain broken at seq {seq}", None
    )


def _link_problem(event_id, member_id, seq, prev_seq, stored_prev, prev_hash, stored_hash, values) -> str:
    if seq != prev_seq + 1:
        return f"event {event_id} (member {member_id}): seq {seq} follows {prev_seq}, an event is missing"
    if stored_prev != prev_hash:
        return f"event {event_id} (member {member_id}, seq {seq}): does not link to the event before it"
    if chain_hash(stored_prev, content_of(tuple(values))) != stored_hash:
        return f"event {event_id} (member {member_id}, seq {seq}): content does not match its hash"
    return ""


def _checkpoint_problem_postgres(checkpoint: Checkpoint) -> str:
    events, heads = ConsentEvent._meta.db_table, CheckpointHead._meta.db_table
    sql = f"""
        SELECT x.member_id, x.seq, e.id, e.hash = x.hash,
               (SELECT MAX(seq) FROM {events} m WHERE m.member_id = x.member_id)
        FROM {heads} x
        JOIN (SELECT member_id, MAX(checkpoint_id) AS cp FROM {heads}
              WHERE checkpoint_id <= %s GROUP BY member_id) latest
          ON latest.member_id = x.member_id AND latest.cp = x.checkpoint_id
        LEFT JOIN {events} e ON e.member_id = x.member_id AND e.seq = x.seq
        WHERE e.id IS NULL OR e.hash <> x.hash
        ORDER BY x.member_id
        LIMIT 1
    """  # noqa: S608 - table names only
    with connection.cursor() as cursor:
        cursor.execute(sql, [checkpoint.pk])
        row = cursor.fetchone()
    if row is not None:
        member_id, seq, event_id, _, last_seq = row
        if last_seq is None:
            return f"member {member_id}: chain missing, checkpoint {checkpoint.pk} fixed it at seq {seq}"
        if event_id is None:
            return (
                f"member {member_id}: chain ends at seq {last_seq} but checkpoint {checkpoint.pk} fixed it at "
                f"seq {seq}: events were deleted from its end"
            )
        return f"event {event_id}: differs from the head fixed by checkpoint {checkpoint.pk}"
    root = MerkleBuilder()
    for member_id, seq, hash_ in _heads_as_of(checkpoint):
        root.add(head_leaf(member_id, seq, hash_))
    if root.root() != checkpoint.merkle_root:
        return f"checkpoint {checkpoint.pk}: Merkle root does not match the chain heads"
    return ""


def _verify_streaming(*, batch: int) -> VerificationResult:
    checkpoint = Checkpoint.objects.order_by("-pk").first()
    expected_heads = _heads_as_of(checkpoint) if checkpoint else iter(())
    next_expected = next(expected_heads, None)
    checked = chains = 0
    current_member: int | None = None
    prev_hash = GENESIS
    prev_seq = 0
    root = MerkleBuilder()
    # Heads per chain at the checkpoint's last event, to recompute the Merkle root.
    checkpoint_head: tuple[int, int, str] | None = None

    def fail(message: str, event_id: int | None) -> VerificationResult:
        return VerificationResult(False, checked, chains, checkpoint.pk if checkpoint else None, message, event_id)

    def close_chain(member_id: int, last_seq: int) -> str | None:
        nonlocal next_expected, checkpoint_head
        if checkpoint_head is not None:
            root.add(head_leaf(*checkpoint_head))
            checkpoint_head = None
        if next_expected is not None and next_expected[0] < member_id:
            return f"member {next_expected[0]}: chain missing, checkpoint {checkpoint.pk} fixed it at seq {next_expected[1]}"
        if next_expected is not None and next_expected[0] == member_id:
            if last_seq < next_expected[1]:
                return (
                    f"member {member_id}: chain ends at seq {last_seq} but checkpoint {checkpoint.pk} fixed it at "
                    f"seq {next_expected[1]}: events were deleted from its end"
                )
            next_expected = next(expected_heads, None)
        return None

    for row in _stream_events(batch):
        event_id, stored_prev, stored_hash, *fields = row
        member_id, seq = fields[0], fields[1]
        if member_id != current_member:
            if current_member is not None:
                problem = close_chain(current_member, prev_seq)
                if problem:
                    return fail(problem, None)
            current_member, prev_hash, prev_seq = member_id, GENESIS, 0
            chains += 1
        problem = _link_problem(event_id, member_id, seq, prev_seq, stored_prev, prev_hash, stored_hash, fields)
        if problem:
            return fail(problem, event_id)
        at_fixed_head = next_expected is not None and next_expected[0] == member_id and next_expected[1] == seq
        if at_fixed_head and next_expected[2] != stored_hash:
            return fail(f"event {event_id}: differs from the head fixed by checkpoint {checkpoint.pk}", event_id)
        if checkpoint is not None and event_id <= checkpoint.last_event_id:
            checkpoint_head = (member_id, seq, stored_hash)
        prev_hash, prev_seq = stored_hash, seq
        checked += 1
    if current_member is not None:
        problem = close_chain(current_member, prev_seq)
        if problem:
            return fail(problem, None)
    if next_expected is not None:
        return fail(
            f"member {next_expected[0]}: chain missing, checkpoint {checkpoint.pk} fixed it at seq {next_expected[1]}",
            None,
        )
    if checkpoint is not None and root.root() != checkpoint.merkle_root:
        return fail(f"checkpoint {checkpoint.pk}: Merkle root does not match the chain heads", None)
    return VerificationResult(True, checked, chains, checkpoint.pk if checkpoint else None)


def _evidence_text(event: ConsentEvent) -> str:
    text = getattr(event, "_evidence_text", None)
    return text if text is not None else canonical_json(event.evidence or {})


def _prefix_of(event: ConsentEvent) -> str:
    return content_prefix(
        event.member_id, event.brand_id, event.purpose_id, event.channel, event.action, event.occurred_at,
        event.recorded_at, event.source_type, event.source_ref, event.store_id, event.notice_id, event.by_guardian,
        event.external_id, _evidence_text(event),
    )  # fmt: skip


def append(event: ConsentEvent) -> bool:
    """Chain ``event`` onto its member's ledger and apply it to ConsentState, inside the
    caller's transaction (or as one autocommitted statement). Returns whether the state
    changed.

    This is the hot path of every consent write. The head row is the per-member writer
    lock: writers of one member queue on it, so seq and prev_hash never fork, while
    different members never wait for each other. The state moves only when the event is
    not older than it (``ON CONFLICT … DO UPDATE … WHERE``), so late old events never
    override newer choices. On PostgreSQL it is one statement (one round trip) that also
    computes the hash with the database's sha256() over the same bytes ``hash_event``
    hashes; elsewhere a few plain statements.
    """
    if connection.vendor == "postgresql":
        return _append_postgres(event)
    return _append_portable(event)


_POSTGRES_APPEND = """
WITH head AS (
  INSERT INTO {heads} AS h (member_id, seq, prev_hash, hash)
  VALUES (%(member)s::bigint, 1, %(genesis)s::text,
          encode(sha256(convert_to(%(genesis)s::text || %(prefix)s::text || '1', 'UTF8')), 'hex'))
  ON CONFLICT (member_id) DO UPDATE SET
    seq = h.seq + 1,
    prev_hash = h.hash,
    hash = encode(sha256(convert_to(h.hash || %(prefix)s::text || (h.seq + 1)::text, 'UTF8')), 'hex')
  RETURNING seq, prev_hash, hash
), ev AS (
  INSERT INTO {events} (member_id, brand_id, purpose_id, channel, action, occurred_at, recorded_at, source_type,
                        source_ref, store_id, notice_id, evidence, by_guardian, external_id, seq, prev_hash, hash)
  SELECT %(member)s::bigint, %(brand)s::bigint, %(purpose)s::bigint, %(channel)s::text, %(action)s::text,
         %(occurred_at)s::timestamptz, %(recorded_at)s::timestamptz, %(source_type)s::text, %(source_ref)s::text,
         %(store)s::bigint, %(notice)s::bigint, %(evidence)s::text, %(by_guardian)s::boolean,
         %(external_id)s::text, head.seq, head.prev_hash, head.hash
  FROM head
  RETURNING id, seq, prev_hash, hash
), st AS (
  INSERT INTO {states} AS s (member_id, brand_id, purpose_id, channel, action, occurred_at, event_id, by_guardian)
  SELECT %(member)s::bigint, %(brand)s::bigint, %(purpose)s::bigint, %(channel)s::text, %(action)s::text,
         %(occurred_at)s::timestamptz, ev.id, %(by_guardian)s::boolean
  FROM ev
  ON CONFLICT (member_id, brand_id, purpose_id, channel) DO UPDATE SET
    action = excluded.action, occurred_at = excluded.occurred_at,
    event_id = excluded.event_id, by_guardian = excluded.by_guardian
  WHERE s.occurred_at <= excluded.occurred_at
  RETURNING 1
)
SELECT ev.id, ev.seq, ev.prev_hash, ev.hash, (SELECT COUNT(*) FROM st) FROM ev
"""


def _append_postgres(event: ConsentEvent) -> bool:
    sql = _POSTGRES_APPEND.format(
        heads=ChainHead._meta.db_table, events=ConsentEvent._meta.db_table, states=ConsentState._meta.db_table
    )
    params = {
        "member": event.member_id, "brand": event.brand_id, "purpose": event.purpose_id, "channel": event.channel,
        "action": event.action, "occurred_at": event.occurred_at, "recorded_at": event.recorded_at,
        "source_type": event.source_type, "source_ref": event.source_ref, "store": event.store_id,
        "notice": event.notice_id, "evidence": _evidence_text(event),
        "by_guardian": event.by_guardian, "external_id": event.external_id,
        "genesis": GENESIS, "prefix": _prefix_of(event),
    }  # fmt: skip
    # A server-side-bound, prepared statement: Django's cursors bind on the client, and
    # planning this statement afresh on every call cost about a third of its time. It
    # bypasses Django's query log, so query-count assertions do not see it.
    # DB_PREPARED_STATEMENTS=0 turns preparing off (PgBouncer in transaction mode < 1.21).
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=bool(settings.DB_PREPARED_STATEMENTS))
        event.pk, event.seq, event.prev_hash, event.hash, changed = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias
    return bool(changed)


def _append_portable(event: ConsentEvent) -> bool:
    ops = connection.ops
    events, heads, states = ConsentEvent._meta.db_table, ChainHead._meta.db_table, ConsentState._meta.db_table
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash FROM {heads} WHERE member_id = %s{lock}", [event.member_id])  # noqa: S608
        row = cursor.fetchone() or (0, GENESIS)
        event.seq, event.prev_hash = row[0] + 1, row[1]
        event.hash = chain_hash(event.prev_hash, _prefix_of(event) + str(event.seq))
        cursor.execute(
            f"""INSERT INTO {events} (member_id, brand_id, purpose_id, channel, action, occurred_at, recorded_at,
                  source_type, source_ref, store_id, notice_id, evidence, by_guardian, external_id, seq, prev_hash, hash)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",  # noqa: S608
            [
                event.member_id, event.brand_id, event.purpose_id, event.channel, event.action,
                ops.adapt_datetimefield_value(event.occurred_at), ops.adapt_datetimefield_value(event.recorded_at),
                event.source_type, event.source_ref, event.store_id, event.notice_id,
                _evidence_text(event), event.by_guardian, event.external_id,
                event.seq, event.prev_hash, event.hash,
            ],
        )  # fmt: skip
        event.pk = cursor.fetchone()[0]
        event._state.adding = False
        event._state.db = connection.alias
        cursor.execute(
            f"""INSERT INTO {heads} (member_id, seq, prev_hash, hash) VALUES (%s, %s, %s, %s)
                ON CONFLICT (member_id) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash,
                  hash = excluded.hash""",  # noqa: S608
            [event.member_id, event.seq, event.prev_hash, event.hash],
        )
        cursor.execute(
            f"""INSERT INTO {states} (member_id, brand_id, purpose_id, channel, action, occurred_at, event_id, by_guardian)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (member_id, brand_id, purpose_id, channel) DO UPDATE SET
                  action = excluded.action, occurred_at = excluded.occurred_at,
                  event_id = excluded.event_id, by_guardian = excluded.by_guardian
                WHERE {states}.occurred_at <= excluded.occurred_at
                RETURNING event_id""",  # noqa: S608
            [
                event.member_id, event.brand_id, event.purpose_id, event.channel, event.action,
                ops.adapt_datetimefield_value(event.occurred_at), event.pk, event.by_guardian,
            ],
        )  # fmt: skip
        return cursor.fetchone() is not None

"""Verifying the consent ledger: every hash, every link, every checkpoint.

On PostgreSQL the database recomputes the hashes partition by partition (a scan of one
month at a time, then the links between months); elsewhere Python streams the ledger in
keyset-paginated batches. Both apply the same rules and give the same
messages, and the suite runs both (SQLite in ``make test``, PostgreSQL in ``.ci/run``).

A recorded verification (``record_verification``: the command and the nightly task)
also checks the projection: ConsentState against a fold of the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from . import ledger_partitions
from .ledger import (
    FORMAT,
    GENESIS,
    HASHED_FIELDS,
    MerkleBuilder,
    _heads_as_of,
    chain_hash,
    content_of,
    create_checkpoint,
    head_leaf,
)
from .models import Checkpoint, CheckpointHead, ConsentEvent, LedgerVerification
from .services.projection import ProjectionCheck, check_projection

# The last finished verification, which the dashboard reads on every admin index: cached,
# so a warm page costs no query for it. ``record_verification`` drops the entry when a run
# ends; the expiry bounds what another process's memory (or a cache that was away while
# it was dropped) keeps showing.
LAST_VERIFICATION_KEY = "consent:last-verification:v1"
LAST_VERIFICATION_SECONDS = 300


@dataclass
class VerificationResult:
    ok: bool
    events_checked: int
    chains_checked: int
    checkpoint_id: int | None
    first_error: str = ""
    first_bad_event_id: int | None = None
    # Set by ``record_verification``; ``ok`` is about the ledger alone.
    projection: ProjectionCheck | None = None
    projection_seconds: float = 0.0

    @property
    def projection_ok(self) -> bool | None:
        return None if self.projection is None else self.projection.ok

    @property
    def all_ok(self) -> bool:
        """The ledger is intact and the projection, where checked, equals its fold."""
        return self.ok and self.projection_ok is not False


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
    On PostgreSQL the database recomputes the hashes a partition at a time (``_verify_postgres``);
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


def record_verification(*, batch: int = 20000, checkpoint: bool = False) -> tuple[VerificationResult, float]:
    """Verify the ledger, then check that ConsentState equals its fold, and keep both
    outcomes as a ``LedgerVerification`` row (the compliance report and the dashboard
    show the last one); with ``checkpoint``, fix a checkpoint after an intact run.
    Returns the result and the seconds the ledger scan took.

    Deliberately not one transaction: the row is written before the scans and after
    each, so a run that dies half-way stays visible as started and never finished (with
    the ledger's outcome when only the projection check died), and the scans of millions
    of rows hold no transaction open."""
    record = LedgerVerification.objects.create()
    started = time.monotonic()
    result = verify_ledger(batch=batch)
    seconds = time.monotonic() - started
    LedgerVerification.objects.filter(pk=record.pk).update(
        ok=result.ok,
        events_checked=result.events_checked,
        checkpoint_id=result.checkpoint_id,
        first_error=result.first_error,
    )
    started = time.monotonic()
    result.projection = check_projection(limit=1)
    result.projection_seconds = time.monotonic() - started
    LedgerVerification.objects.filter(pk=record.pk).update(
        finished_at=timezone.now(),
        projection_ok=result.projection.ok,
        projection_differences=result.projection.count,
        projection_first_difference="".join(result.projection.lines[:1]),
    )
    cache.delete(LAST_VERIFICATION_KEY)
    if result.ok and checkpoint:
        create_checkpoint()
    return result, seconds


def last_finished_verification() -> LedgerVerification | None:
    """The latest verification that ran to its end (one still running says "not intact"
    until it ends), from the cache or one query; None before the first."""
    cached = cache.get(LAST_VERIFICATION_KEY)
    if cached is not None:
        return cached or None
    last = LedgerVerification.objects.filter(finished_at__isnull=False).order_by("-started_at", "-pk").first()
    cache.set(LAST_VERIFICATION_KEY, last or 0, LAST_VERIFICATION_SECONDS)  # 0: none yet, also worth keeping
    return last


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


# Per partition, in one pass over its chain index: each event's hash, and its link to the
# event before it where that one is in the same partition. What is left to link across
# partitions goes to a temporary table: the first and the last event of each stretch of
# consecutive seqs of a member (a "run"), marked ``starts`` / ``ends``, with the number of
# the member's events in the partition on its first row, and any event found wrong. The
# database sorts one partition at a time, so memory stays bounded whatever the ledger's
# size. A member's next event usually lands in the same or a later month, but not always:
# two writers racing at midnight of the 1st can store seq n+1 in the old month and seq n in
# the new one; the runs are stitched by seq, not by month. (A first version grouped the
# runs with ordered ARRAY_AGGs: 196,000 events/s against 323,000 for one unpartitioned
# scan; this one keeps the single pass.)
_PARTITION_SCAN = """
    INSERT INTO _ledger_ends (member_id, seq, starts, ends, bad, prev_hash, hash, events)
    SELECT member_id, seq, starts, ends, bad, prev_hash, hash, CASE WHEN lag_seq IS NULL THEN events ELSE 0 END
    FROM (
      SELECT member_id, seq, prev_hash, hash, lag_seq,
             lag_seq IS DISTINCT FROM seq - 1 AS starts, lead_seq IS DISTINCT FROM seq + 1 AS ends,
             NOT hash_ok OR (lag_seq = seq - 1 AND prev_hash <> lag_hash) AS bad, events
      FROM (
        SELECT e.member_id, e.seq, e.prev_hash, e.hash,
               LAG(e.seq) OVER w AS lag_seq, LAG(e.hash) OVER w AS lag_hash, LEAD(e.seq) OVER w AS lead_seq,
               COUNT(*) OVER m AS events,
               e.hash = encode(sha256(convert_to(e.prev_hash || {content}, 'UTF8')), 'hex') AS hash_ok
        FROM ONLY {partition} e
        WINDOW m AS (PARTITION BY e.member_id), w AS (m ORDER BY e.seq)
      ) checked
    ) flagged
    WHERE starts OR ends OR bad
"""

# The events, the chains (members), the first event found wrong in a partition, and the
# first run that does not continue the one before it: a member's first run starts the chain
# (seq 1, the genesis hash), each other starts right after the end of the one before it.
_STITCH = """
    SELECT (SELECT COALESCE(SUM(events), 0)::bigint FROM _ledger_ends),
           COUNT(*) FILTER (WHERE starts AND lag_seq IS NULL),
           LEAST(
             (SELECT MIN(ARRAY[member_id, seq]) FROM _ledger_ends WHERE bad),
             MIN(ARRAY[member_id, seq]) FILTER (WHERE starts AND CASE
               WHEN lag_seq IS NULL THEN seq <> 1 OR prev_hash <> %(genesis)s
               ELSE NOT lag_ends OR seq <> lag_seq + 1 OR prev_hash <> lag_hash END)
           )
    FROM (
      SELECT member_id, seq, starts, prev_hash,
             LAG(seq) OVER w AS lag_seq, LAG(ends) OVER w AS lag_ends, LAG(hash) OVER w AS lag_hash
      FROM _ledger_ends WHERE starts OR ends
      WINDOW w AS (PARTITION BY member_id ORDER BY seq, ends DESC)
    ) stitched
"""


def _verify_postgres() -> VerificationResult:
    """Streams the ledger partition by partition (``ledger_partitions.partitions``: each
    month, then DEFAULT; the table itself if it is not partitioned)."""
    checkpoint = Checkpoint.objects.order_by("-pk").first()
    checkpoint_id = checkpoint.pk if checkpoint else None
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS _ledger_ends (member_id bigint, seq integer, starts boolean, "
            "ends boolean, bad boolean, prev_hash text, hash text, events bigint)"
        )
        cursor.execute("TRUNCATE _ledger_ends")
        try:
            for partition in ledger_partitions.partitions():
                cursor.execute(
                    _PARTITION_SCAN.format(content=_content_sql("e"), partition=partition), {"format": FORMAT}
                )
            cursor.execute(_STITCH, {"genesis": GENESIS})
            count, chains, first_bad = cursor.fetchone()
        finally:
            cursor.execute("DROP TABLE IF EXISTS _ledger_ends")
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

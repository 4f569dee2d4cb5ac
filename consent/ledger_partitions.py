"""The ledger's monthly partitions on PostgreSQL (docs/consent.md, "Partitioned ledger").

``consent_consentevent`` is partitioned by RANGE (``recorded_at``), one partition per
calendar month in UTC (``consent_consentevent_y2026m12``), plus a DEFAULT partition that
catches a row no month partition covers, so a consent write never fails for want of a
partition. ``create_partitions`` (beat, daily; ``manage.py create_ledger_partitions``)
keeps ``LEDGER_PARTITIONS_AHEAD`` (3) months ready. Partitions are never dropped: they are
evidence.

Every partition gets what a partitioned parent cannot give it: the unique (member, seq)
index of the chain, and the statement trigger that refuses TRUNCATE. The row trigger
refusing UPDATE and DELETE is defined on the parent, and PostgreSQL clones it onto every
partition, also one attached later.

On other databases there are no partitions and everything here answers "none".
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from cdp.env import env_int

logger = logging.getLogger(__name__)

PARENT = "consent_consentevent"
DEFAULT = f"{PARENT}_default"
# Writers wait behind a lock request: ATTACH takes a lock on the DEFAULT partition that
# every ledger read holds too, so it gives up quickly (and tries again on the next run,
# months before the partition is needed) rather than stall appends behind a long scan.
LOCK_TIMEOUT = "5s"
# Months made ready after the current one: the beat task runs daily, so a beat that is
# down for weeks still leaves room before a row would land in DEFAULT.
AHEAD = env_int("LEDGER_PARTITIONS_AHEAD", 3)


def month_start(value: dt.datetime | dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date()
    return value.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    following = add_months(month, 1)
    return start, dt.datetime(following.year, following.month, 1, tzinfo=dt.UTC)


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))", [PARENT])
        return bool(cursor.fetchone()[0])


def partitions() -> list[str]:
    """The ledger's partitions, month partitions oldest first, then DEFAULT; the table
    itself where it is not partitioned (any other database)."""
    if not is_partitioned():
        return [PARENT]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    return sorted(n for n in names if n != DEFAULT) + [n for n in names if n == DEFAULT]


def prepare_partition(cursor, name: str) -> None:
    """What each partition needs beyond what the parent passes on: the chain's unique
    (member, seq) index and the TRUNCATE guard (a statement trigger is not cloned)."""
    cursor.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {name}_chain ON {name} (member_id, seq)")
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = 'consent_ledger_no_truncate')",
        [name],
    )
    if not cursor.fetchone()[0]:
        cursor.execute(
            f"CREATE TRIGGER consent_ledger_no_truncate BEFORE TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_is_append_only()"
        )


def default_rows() -> int:
    """Events in the DEFAULT partition: none while the beat task keeps months ahead."""
    if not is_partitioned():
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {DEFAULT}")  # noqa: S608 - our table's name
        return int(cursor.fetchone()[0])


@dataclass
class PartitionReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    # Months the DEFAULT partition holds events of: their partition cannot be attached
    # until those rows are moved by hand (docs/consent.md); they stay guarded and verified.
    blocked: list[str] = field(default_factory=list)
    # Months whose ATTACH waited longer than LOCK_TIMEOUT: the next run tries again.
    busy: list[str] = field(default_factory=list)
    default_rows: int = 0


def create_partitions(
    *, ahead: int | None = None, start: dt.date | None = None, now: dt.datetime | None = None
) -> PartitionReport:
    """Make sure a partition exists for every month from ``start`` (default: this month)
    to ``ahead`` months after this one. Idempotent; each month its own transaction.

    A new partition is built on its own (``LIKE`` the parent, its indexes and guard) and
    then ATTACHed, which locks the parent only against other schema changes (SHARE UPDATE
    EXCLUSIVE), so appends and reads go on; ``CREATE TABLE … PARTITION OF`` would lock
    them all out."""
    report = PartitionReport()
    if not is_partitioned():
        return report
    ahead = AHEAD if ahead is None else ahead
    this_month = month_start(now or timezone.now())
    month = month_start(start) if start else this_month
    last = add_months(this_month, ahead)
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = %s::regclass", [PARENT])  # fmt: skip
        present = {row[0] for row in cursor.fetchall()}
    while month <= last:
        name = partition_name(month)
        if name in present:
            report.existing.append(name)
        else:
            outcome = _attach_month(month)
            getattr(report, outcome).append(name)
        month = add_months(month, 1)
    report.default_rows = default_rows()
    if report.blocked or report.default_rows:
        logger.error(
            "consent ledger: %s events in the DEFAULT partition; months that cannot get their partition: %s",
            report.default_rows,
            ", ".join(report.blocked) or "none",
        )
    return report


def _attach_month(month: dt.date) -> str:
    name = partition_name(month)
    start, end = (f"'{bound.isoformat()}'" for bound in bounds(month))  # DDL takes no parameters
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE recorded_at >= {start} AND recorded_at < {end})"  # noqa: S608
            )
            if cursor.fetchone()[0]:
                return "blocked"
            cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            # The bounds as a CHECK let ATTACH skip scanning the new table for rows outside them.
            cursor.execute(
                f"ALTER TABLE {name} ADD CONSTRAINT {name}_bounds CHECK (recorded_at >= {start} AND recorded_at < {end})"
            )
            prepare_partition(cursor, name)
            cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})")
            cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            logger.warning("consent ledger: partition %s not attached, the ledger was busy; next run", name)
            return "busy"
        raise
    return "created"

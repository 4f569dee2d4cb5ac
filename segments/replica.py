"""A build's rule matching on a read replica (docs/operations.md "Read replicas").

Matching is the heavy part of a build: the rules, the consent step and the rest of the
funnel over every member. It may run on a replica only if that cannot let out a person who
withdrew: so a build first takes the primary's write position (its WAL LSN) and matches on
a replica only once that replica has replayed up to it (waiting up to
``BUILD_REPLICA_MAX_WAIT`` seconds, else the primary matches). Every withdrawal committed
before the build started is then seen; one committed after it is caught by the export's
re-check, which reads the primary (``segments.exports``).

The snapshot rows are written on the primary, in the build's transaction: the final
members' ids come from the replica as a COPY stream and go into the primary by COPY. The
replica counts the funnel and lists the final members in one REPEATABLE READ transaction,
so both see the same data.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import QuerySet

from cdp import db_router

from .models import SegmentMember
from .queries import FUNNEL_COUNTS_SQL

log = logging.getLogger(__name__)


def caught_up_replica() -> str | None:
    """A replica that shows every commit made on the primary before now, or None."""
    if connection.vendor != "postgresql" or not db_router.replicas() or settings.BUILD_REPLICA_MAX_WAIT <= 0:
        return None
    return db_router.replica_at(db_router.primary_lsn(), max_wait=settings.BUILD_REPLICA_MAX_WAIT)


def count_and_copy(
    alias: str, flagged: QuerySet[Any], build_id: int, final: str, *, work_mem: str
) -> tuple[tuple[int, ...], int]:
    """The funnel counted on replica ``alias`` and the final members (``final``: the
    WHERE/ORDER/LIMIT over the flagged rows ``f``) copied from it into the primary's
    snapshot table for ``build_id``. Raises DatabaseError when the replica fails."""
    replica = connections[alias]
    sql, params = flagged.query.sql_with_params()
    table = connection.ops.quote_name(SegmentMember._meta.db_table)
    final_rows = f"SELECT {int(build_id)}, f.member_ref FROM ({sql}) AS f {final}"  # noqa: S608 - compiled SQL
    with transaction.atomic(using=alias), replica.cursor() as source:
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        source.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)", [work_mem])
        source.execute(f"SELECT {FUNNEL_COUNTS_SQL} FROM ({sql}) AS f", params)  # noqa: S608 - compiled SQL
        counts = tuple(source.fetchone())
        with connection.cursor() as target:
            raw_source, raw_target = source.cursor, target.cursor
            # COPY (query) TO STDOUT on the standby, bound client-side (COPY takes no parameters).
            copy_out = replica.ops.compose_sql(f"COPY ({final_rows}) TO STDOUT", params)
            with replica.wrap_database_errors, connection.wrap_database_errors:
                with (
                    raw_source.copy(copy_out) as out,
                    raw_target.copy(f"COPY {table} (build_id, member_id) FROM STDIN") as into,
                ):
                    for block in out:
                        into.write(block)
                written = raw_target.rowcount
    return counts, written


def match_on_replica(flagged: QuerySet[Any], build_id: int, final: str) -> tuple[tuple[int, ...], int] | None:
    """``count_and_copy`` on a caught-up replica, inside a savepoint of the build's
    transaction; None when there is no such replica or it failed half-way (then the
    primary matches, as without replicas)."""
    alias = caught_up_replica()
    if alias is None:
        return None
    try:
        with transaction.atomic():  # a savepoint: a half-copied snapshot goes away with it
            result = count_and_copy(alias, flagged, build_id, final, work_mem=settings.SEGMENT_WORK_MEM)
    except DatabaseError as exc:
        if not db_router.replica_failed(alias):
            log.warning(
                "segment build %s: matching on replica %s failed (%s); the primary matches", build_id, alias, exc
            )
        return None
    log.info("segment build %s matched on replica %s", build_id, alias)
    return result

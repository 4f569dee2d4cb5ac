"""Planner statistics for small tables that queries over millions of rows join to
(brands, stores, purposes, notices): a migration operation (issue 28, the scale bench).

Autovacuum analyzes a table once ``50 + 10 %`` of its rows changed, so a table of a few
dozen rows is never analyzed: without statistics the planner takes "the stores of brand
X" for one row, and a query that asks "is a member of one of the brand's stores" (segment
rules, the dashboard's per-brand counts) is planned for one store's members instead of
all of them. At 5M members that turned a segment build into minutes of per-member index
look-ups (bench/README.md, "Scale"). With a threshold of 0, autovacuum analyzes these
tables after any change; they are small, so it costs nothing. PostgreSQL only.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, migrations, transaction
from django.db.models import signals

log = logging.getLogger(__name__)


def analyze_after_any_change(*tables: str) -> migrations.RunPython:
    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            schema_editor.execute(f"ALTER TABLE {table} SET (autovacuum_analyze_threshold = 0)")
            schema_editor.execute(f"ANALYZE {table}")

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            schema_editor.execute(f"ALTER TABLE {table} RESET (autovacuum_analyze_threshold)")

    return migrations.RunPython(forwards, backwards, elidable=False)


def analyze_when_changed(*models: type) -> None:
    """Analyze the table of each of ``models`` after every transaction that saved or
    deleted one of its rows, once per table and transaction (PostgreSQL only). The
    threshold above leaves it to autovacuum, which is off on some servers and busy for
    hours on others after a bulk load: the scale bench's fresh load left ``members_store``
    unanalyzed (autovacuum off), and its segment build took 120 s instead of 5. These
    tables change a few times a day; their ANALYZE takes about a millisecond."""
    for model in models:
        signals.post_save.connect(
            _schedule_analyze, sender=model, weak=False, dispatch_uid=f"analyze-{model._meta.label}"
        )
        signals.post_delete.connect(
            _schedule_analyze, sender=model, weak=False, dispatch_uid=f"analyze-{model._meta.label}-delete"
        )


def _schedule_analyze(sender: type, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    table = sender._meta.db_table
    if any(getattr(callback, "analyze_table", None) == table for _sids, callback, _robust in connection.run_on_commit):
        return  # already due at this transaction's commit

    def analyze() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        except DatabaseError as exc:  # statistics are a help, never a reason to fail a change
            log.warning("ANALYZE %s failed: %s", table, exc)

    analyze.analyze_table = table  # type: ignore[attr-defined]
    transaction.on_commit(analyze, using=using)

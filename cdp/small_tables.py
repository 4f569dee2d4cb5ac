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

from django.db import migrations


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

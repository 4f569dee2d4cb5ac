"""The small tables that big queries join to are analyzed after any change (PostgreSQL):
without statistics the planner takes a brand's stores for one row (bench/README.md, "Scale")."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TABLES = ["consent_notice", "consent_purpose", "members_brand", "members_store"]


def test_brands_stores_purposes_and_notices_are_analyzed_after_any_change():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname", [TABLES])
        options = dict(cursor.fetchall())
    assert options == {table: ["autovacuum_analyze_threshold=0"] for table in TABLES}

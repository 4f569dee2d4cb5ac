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


def _reltuples(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_a_change_is_analyzed_at_commit_once_per_table_also_without_autovacuum(django_capture_on_commit_callbacks):
    """Autovacuum is off on some servers (this one's CI among them) and busy for hours after a
    bulk load elsewhere: the commit itself analyzes the small table it changed."""
    from tests.factories import BrandFactory, StoreFactory

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        brand = BrandFactory(code="jade")
        for k in range(3):
            StoreFactory(brand=brand, code=f"jade-{k}", platform="pos")
    analyzed = sorted(getattr(callback, "analyze_table", "") for callback in callbacks)
    assert analyzed == ["members_brand", "members_store"]  # one each, not one per row
    assert _reltuples("members_store") == 3 and _reltuples("members_brand") == 1
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT * FROM members_store WHERE brand_id = %s", [brand.pk])
        assert "rows=3 " in cursor.fetchone()[0]  # the planner knows the brand's stores

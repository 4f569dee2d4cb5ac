"""Orders keep only the indexes their queries use: store and member lead composite
indexes, so single-column ones would be paid on every imported order for nothing; the
foreign keys themselves stay enforced."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from members.models import Order
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


def _indexes() -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, Order._meta.db_table)


def test_store_and_member_are_indexed_only_as_the_lead_of_composite_indexes():
    indexes = [i for i in _indexes().values() if (i["index"] or i["unique"]) and not i["primary_key"]]
    columns = sorted(tuple(i["columns"]) for i in indexes)

    assert ("member_id",) not in columns and ("store_id",) not in columns
    assert ("member_id", "placed_at") in columns
    assert ("store_id", "external_id") in columns and ("store_id", "placed_at") in columns


@pytest.mark.postgres
def test_the_foreign_keys_are_still_enforced():
    store = StoreFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(store=store, external_id="O-1", member_id=999_999, amount=1, placed_at="2026-11-11T12:00Z")
        connection.check_constraints()

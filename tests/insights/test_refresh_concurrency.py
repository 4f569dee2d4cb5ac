"""Two refreshes of one brand's figures at the same moment (the nightly run and someone
pressing "Refresh figures"): both succeed, one after the other, and leave one set of rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from insights import queries, services
from insights.models import BrandFigures, ConsentDay, StoreDay

from .conftest import at, record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_refreshes_of_one_brand(world, monkeypatch):
    record(world, "A", "granted", at(2026, 1, 5))
    record(world, "B", "withdrawn", at(2026, 1, 6), source="privacy_center")
    # Both refreshes finish computing before either writes: the writes then overlap.
    computed = threading.Barrier(2, timeout=30)
    real = queries.consent_days

    def consent_days(brand, until):
        rows = real(brand, until)
        computed.wait()
        return rows

    monkeypatch.setattr(queries, "consent_days", consent_days)

    def refresh(_):
        try:
            return services.refresh_figures(brand=world.lotus)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(refresh, range(2)))
    assert len(results) == 2
    assert BrandFigures.objects.count() == 1
    assert sorted(ConsentDay.objects.values_list("action", "events")) == [("granted", 1), ("withdrawn", 1)]
    assert StoreDay.objects.count() == len(queries.store_days(world.lotus, results[-1].computed_at)) > 0

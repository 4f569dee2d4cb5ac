"""Cancelled and refunded orders count nowhere unless ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE
says so: segment order rules, the capture rate and the member's metrics agree."""

from __future__ import annotations

import pytest

from members.metrics import refresh_member_metrics
from members.models import Order
from members.queries import capture_rate
from segments.queries import dry_run_counts

from .conftest import make_segment, shopper

pytestmark = pytest.mark.django_db

BUYERS = {"all": [{"field": "orders", "op": ">=", "value": 1}]}


@pytest.fixture
def people(tmall):
    kept, refunded = shopper(tmall, orders=1), shopper(tmall, orders=1)
    Order.objects.filter(member=refunded).update(status=Order.Status.REFUNDED)
    refresh_member_metrics()
    return kept, refunded


def test_a_refunded_order_makes_nobody_a_buyer(brand, marketing, tmall, people, settings):
    kept, refunded = people
    segment = make_segment(brand, marketing, BUYERS)
    assert dry_run_counts(segment)["matched"] == 1
    refunded.refresh_from_db()
    assert (refunded.order_count, refunded.lifecycle_stage) == (0, "prospect")
    assert [(r.orders, r.member_orders) for r in capture_rate(stores=tmall.brand.stores.all())] == [(1, 1)]

    settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE = True
    assert dry_run_counts(segment)["matched"] == 2
    assert [(r.orders, r.member_orders) for r in capture_rate(stores=tmall.brand.stores.all())] == [(2, 2)]

"""Member aggregates, lifecycle stages and capture rate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members import services
from members.models import Member
from members.queries import capture_rate
from tests.factories import MemberFactory, OrderFactory, StoreFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def member_with_orders(store, *days_ago: int, amount: str = "100.00") -> Member:
    member = MemberFactory()
    for days in days_ago:
        OrderFactory(store=store, member=member, placed_at=ago(days), amount=Decimal(amount))
    return member


@pytest.mark.parametrize(
    ("days_ago", "stage"),
    [
        ((), "prospect"),
        ((10,), "new"),
        ((29, 200), "active"),
        ((45,), "active"),
        ((20, 100, 300), "loyal"),
        ((40, 60, 80, 700), "loyal"),
        ((20, 400, 500), "active"),  # three orders, but not within 365 days
        ((91,), "at_risk"),
        ((150, 170, 179), "at_risk"),
        ((181,), "lapsed"),
        ((600, 700), "lapsed"),
    ],
)
def test_lifecycle_stage(tmall, days_ago, stage):
    member = member_with_orders(tmall, *days_ago)
    services.refresh_member_metrics(now=NOW)
    member.refresh_from_db()
    assert member.lifecycle_stage == stage


def test_aggregates(tmall, jd):
    member = member_with_orders(tmall, 5, 50, amount="120.50")
    OrderFactory(store=jd, member=member, placed_at=ago(400), amount=Decimal("9.99"))
    services.refresh_member_metrics(now=NOW)
    member.refresh_from_db()
    assert member.order_count == 3
    assert member.total_spent == Decimal("250.99")
    assert member.first_order_at == ago(400)
    assert member.last_order_at == ago(5)
    assert member.metrics_refreshed_at == NOW


def test_refresh_is_set_based_and_idempotent(tmall):
    for i in range(30):
        member_with_orders(tmall, i * 20)
    with CaptureQueriesContext(connection) as first:
        written = services.refresh_member_metrics(now=NOW)
    assert written == 30
    assert len([q for q in first.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]) == 2
    assert len(first.captured_queries) <= 4  # two UPDATEs (+ savepoint bookkeeping), whatever the count
    assert services.refresh_member_metrics(now=NOW) == 0  # nothing changed, nothing written


def test_member_whose_orders_moved_away_becomes_prospect(tmall):
    member = member_with_orders(tmall, 5)
    services.refresh_member_metrics(now=NOW)
    member.orders.update(member=None)
    services.refresh_member_metrics(now=NOW)
    member.refresh_from_db()
    assert (member.order_count, member.lifecycle_stage, member.last_order_at) == (0, "prospect", None)


def test_refresh_of_some_members_leaves_others(tmall):
    a = member_with_orders(tmall, 5)
    b = member_with_orders(tmall, 5)
    services.refresh_member_metrics(member_ids=[a.pk], now=NOW)
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.order_count, b.order_count) == (1, 0)


def test_recording_an_order_refreshes_its_member(tmall, django_capture_on_commit_callbacks):
    from tests.factories import make_members

    [member] = make_members(tmall, 1)
    with django_capture_on_commit_callbacks(execute=True):
        order, created = services.record_order(
            store=tmall, external_id="X1", amount=Decimal("66.00"), placed_at=ago(3), store_member_id="S0"
        )
    again, created_again = services.record_order(
        store=tmall, external_id="X1", amount=Decimal("66.00"), placed_at=ago(3), store_member_id="S0"
    )
    assert created and not created_again and again.pk == order.pk
    member.refresh_from_db()
    assert (order.member_id, member.order_count, member.lifecycle_stage) == (member.pk, 1, "new")


def test_capture_rate_per_store_and_month(brand):
    store_a = StoreFactory(brand=brand, code="a")
    store_b = StoreFactory(brand=brand, code="b")
    member = MemberFactory()
    march = dt.datetime(2026, 3, 15, 12, tzinfo=dt.UTC)
    april = dt.datetime(2026, 4, 10, 12, tzinfo=dt.UTC)
    for placed, buyer in [(march, member), (march, None), (march, None), (march, member), (april, None)]:
        OrderFactory(store=store_a, member=buyer, placed_at=placed)
    OrderFactory(store=store_b, member=member, placed_at=april)

    rows = {(r.store_id, r.period.month): r for r in capture_rate(period="month")}
    assert (rows[(store_a.pk, 3)].orders, rows[(store_a.pk, 3)].member_orders) == (4, 2)
    assert rows[(store_a.pk, 3)].rate == Decimal("0.5000")
    assert rows[(store_a.pk, 4)].rate == Decimal("0")
    assert rows[(store_b.pk, 4)].rate == Decimal("1.0000")
    assert rows[(store_a.pk, 3)].guest_orders == 2
    only_b = capture_rate(stores=brand.stores.filter(code="b"), since=april - dt.timedelta(days=1))
    assert [(r.store_id, r.orders) for r in only_b] == [(store_b.pk, 1)]


def test_capture_rate_rejects_unknown_period():
    with pytest.raises(ValueError, match="period"):
        capture_rate(period="fortnight")

"""Order rules in both forms (``segments.rules.orders``): per member, subqueries correlated
on the member (``orders >= N`` reads at most N of a candidate's orders, ``total_spent``
sums only that member's orders, "days since the last order" reads their newest one), and
grouped over all the brand's orders. Both give what the rules mean: only counted orders
(no cancelled or refunded ones by default) at the brand's own stores, 0 orders and 0 spent
for people without any, unknown "days since" without orders. Each case runs both ways."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Order
from segments.rules import Context, matching_members
from tests.factories import OrderFactory, StoreFactory

from .conftest import shopper

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(params=[True, False], ids=["per_member", "grouped"])
def per_member(request) -> bool:
    return request.param


@pytest.fixture
def people(brand, tmall):
    """Members with 0 to 4 orders of 300.00 at the brand, plus orders that must not count:
    another brand's, a refunded and a cancelled one, and one outside a 30-day window."""
    elsewhere = StoreFactory(code="elsewhere", platform="jd", brand__code="elsewhere-brand")
    crowd = {n: shopper(tmall, orders=n, days_ago=5) for n in range(5)}
    for member in crowd.values():
        OrderFactory(store=elsewhere, member=member, amount="999.00", placed_at=NOW - dt.timedelta(days=1))
        for status in (Order.Status.REFUNDED, Order.Status.CANCELLED):
            OrderFactory(
                store=tmall, member=member, amount="999.00", status=status, placed_at=NOW - dt.timedelta(days=1)
            )
    old = shopper(tmall, orders=2, days_ago=60)  # two orders, neither within 30 days
    return crowd, old


def _matched(brand, rule, per_member: bool = True, now=NOW) -> set[int]:
    ctx = Context.for_brand(brand.pk, now, per_member=per_member)
    return set(matching_members({"all": [rule]}, ctx).values_list("pk", flat=True))


def _by_count(crowd, old, test) -> set[int]:
    counts = {member.pk: n for n, member in crowd.items()} | {old.pk: 2}
    return {pk for pk, n in counts.items() if test(Decimal(n))}


ORDER_CASES = [
    (">=", 2, lambda n: n >= 2),
    (">=", 0, lambda n: True),
    (">=", Decimal("1.5"), lambda n: n >= 2),
    (">", 2, lambda n: n > 2),
    (">", Decimal("2.5"), lambda n: n >= 3),
    (">", 0, lambda n: n >= 1),
    ("<", 2, lambda n: n < 2),
    ("<", Decimal("0.5"), lambda n: n == 0),
    ("<=", 0, lambda n: n == 0),
    ("<=", Decimal("2.5"), lambda n: n <= 2),
    ("=", 0, lambda n: n == 0),
    ("=", 3, lambda n: n == 3),
    ("=", Decimal("2.5"), lambda n: False),
    ("!=", 3, lambda n: n != 3),
    ("!=", Decimal("2.5"), lambda n: True),
    ("between", [1, 3], lambda n: 1 <= n <= 3),
    ("between", [Decimal("0.5"), Decimal("2.5")], lambda n: 1 <= n <= 2),
]


@pytest.mark.parametrize(("op", "value", "test"), ORDER_CASES)
def test_order_count_counts_only_counted_orders_at_the_brand(brand, people, per_member, op, value, test):
    crowd, old = people
    value = [float(v) for v in value] if isinstance(value, list) else float(value)
    rule = {"field": "orders", "op": op, "value": value}
    assert _matched(brand, rule, per_member) == _by_count(crowd, old, test)


def test_order_count_within_days_is_counted_from_the_build_clock(brand, people, per_member):
    crowd, old = people
    rule = {"field": "orders", "op": ">=", "value": 2, "within_days": 30}
    assert _matched(brand, rule, per_member) == {crowd[2].pk, crowd[3].pk, crowd[4].pk}
    # As of 40 days from now, the orders of 5 days ago are out of a 30-day window.
    assert _matched(brand, rule, per_member, now=NOW + dt.timedelta(days=40)) == set()


SPENT_CASES = [
    (">", 500, lambda s: s > 500),
    (">=", 600, lambda s: s >= 600),
    (">=", 0, lambda s: True),
    ("<", 300, lambda s: s < 300),
    ("<=", 300.0, lambda s: s <= 300),
    ("=", 0, lambda s: s == 0),
    ("=", 900, lambda s: s == 900),
    ("!=", 900, lambda s: s != 900),
    ("between", [300, 900], lambda s: 300 <= s <= 900),
    (">", 899.99, lambda s: s > Decimal("899.99")),
]


@pytest.mark.parametrize(("op", "value", "test"), SPENT_CASES)
def test_total_spent_sums_only_counted_orders_at_the_brand(brand, people, per_member, op, value, test):
    crowd, old = people
    expected = {m.pk for n, m in crowd.items() if test(Decimal(300 * n))} | ({old.pk} if test(Decimal(600)) else set())
    assert _matched(brand, {"field": "total_spent", "op": op, "value": value}, per_member) == expected


def test_total_spent_within_days(brand, people, per_member):
    crowd, old = people
    rule = {"field": "total_spent", "op": ">=", "value": 600, "within_days": 30}
    assert _matched(brand, rule, per_member) == {crowd[2].pk, crowd[3].pk, crowd[4].pk}


def test_last_order_days_reads_the_newest_counted_order(brand, people, per_member):
    crowd, old = people
    with_orders = {m.pk for n, m in crowd.items() if n}
    # The refunded and cancelled orders of yesterday do not make anyone's last order 1 day ago.
    assert _matched(brand, {"field": "last_order_days", "op": "<=", "value": 1}, per_member) == set()
    assert _matched(brand, {"field": "last_order_days", "op": "=", "value": 5}, per_member) == with_orders
    assert _matched(brand, {"field": "last_order_days", "op": ">", "value": 30}, per_member) == {old.pk}
    # Without orders the number of days is unknown: neither = nor != holds.
    assert _matched(brand, {"field": "last_order_days", "op": "!=", "value": 5}, per_member) == {old.pk}
    assert _matched(brand, {"field": "last_order_days", "op": "!=", "value": 5.5}, per_member) == with_orders | {old.pk}


def test_refunded_orders_count_when_the_setting_says_so(brand, people, per_member, settings):
    crowd, old = people
    settings.ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE = True
    # Each crowd member has a refunded and a cancelled order too: n + 2 orders.
    assert _matched(brand, {"field": "orders", "op": ">=", "value": 3}, per_member) == {
        m.pk for n, m in crowd.items() if n >= 1
    }


def test_order_rules_are_correlated_not_grouped(brand):
    """The shape the plans rely on: per-member subqueries, no grouping of the brand's orders,
    and ``orders >= 2`` stops at the second order."""
    rules = {
        "all": [
            {"field": "orders", "op": ">=", "value": 2, "within_days": 180},
            {"field": "total_spent", "op": ">", "value": 500},
            {"field": "last_order_days", "op": "<=", "value": 30},
            {"field": "category", "op": "in", "value": ["护肤"]},
        ]
    }
    sql = str(matching_members(rules, Context.for_brand(brand.pk, NOW)).query).upper()
    assert "HAVING" not in sql
    assert " IN (SELECT" not in sql
    assert "LIMIT 1 OFFSET 1" in sql


def test_category_rules_read_counted_orders_at_the_brand(brand, tmall, per_member):
    buyer = shopper(tmall)
    OrderFactory(store=tmall, member=buyer, categories=["护肤"], placed_at=NOW - dt.timedelta(days=3))
    refunder = shopper(tmall)
    OrderFactory(store=tmall, member=refunder, categories=["护肤"], status=Order.Status.REFUNDED, placed_at=NOW)
    rule = {"field": "category", "op": "in", "value": ["护肤"]}
    assert _matched(brand, rule, per_member) == {buyer.pk}
    assert _matched(brand, {**rule, "op": "not_in"}, per_member) == {refunder.pk}
    assert _matched(brand, {**rule, "within_days": 2}, per_member) == set()

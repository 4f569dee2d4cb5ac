"""How order rules read orders is chosen per rule (``order_strategy``): per candidate when
the rules' other conditions leave few members, one grouped pass over the brand's orders
when they leave most. Both forms give the same members: the rule oracle holds for the
grouped form too."""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection

from segments.rules import Context, compiler, matching_members, order_strategy

from . import test_rule_oracle
from .conftest import shopper

pytestmark = pytest.mark.django_db

ORDERS = {"field": "orders", "op": ">=", "value": 1}


def test_the_oracle_holds_for_grouped_order_rules(brand, monkeypatch):
    def grouped(rules, ctx):
        return matching_members(rules, dataclasses.replace(ctx, per_member=False))

    monkeypatch.setattr(test_rule_oracle, "matching_members", grouped)
    test_rule_oracle.test_compiled_rules_agree_with_python(brand=brand)


def test_rules_without_orders_keep_the_default(brand):
    ctx = Context.for_brand(brand.pk)
    assert order_strategy({"all": [{"field": "city", "op": "=", "value": "上海"}]}, ctx) is ctx


def test_sqlite_reads_orders_per_member(brand, settings):
    if connection.vendor != "sqlite":
        pytest.skip("the planner is asked on PostgreSQL")
    assert order_strategy({"all": [ORDERS]}, Context.for_brand(brand.pk)).per_member


@pytest.mark.postgres
def test_the_planner_decides(brand, tmall, monkeypatch, django_assert_max_num_queries):
    """The planner's estimate of the candidates against the number of orders: the cost of
    reading one candidate's orders (``ORDERS_PER_CANDIDATE``) tips it either way."""
    for _ in range(5):
        shopper(tmall, city="杭州", orders=2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_order")
    ctx = Context.for_brand(brand.pk)
    rules = {"all": [{"field": "city", "op": "=", "value": "杭州"}, ORDERS]}
    monkeypatch.setattr(compiler, "ORDERS_PER_CANDIDATE", 0)
    with django_assert_max_num_queries(2):  # one EXPLAIN, one catalogue read
        assert order_strategy(rules, ctx).per_member is True
    monkeypatch.setattr(compiler, "ORDERS_PER_CANDIDATE", 10**9)
    assert order_strategy(rules, ctx).per_member is False

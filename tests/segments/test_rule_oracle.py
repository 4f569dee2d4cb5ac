"""For random rules over random small data, the compiled query returns exactly the members
a plain Python evaluation of the same rules over the same rows returns (a test oracle).

The oracle is written from the semantics in ``segments/rules.py``'s docstring, not from the
compiler, so a compiler bug shows up as a disagreement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import Preference
from members.models import Member, Order, StoreMembership
from segments.rules import Context, matching_members, validate
from tests.factories import StoreFactory

TODAY_NOW = timezone.now()
CITIES = ["上海", "杭州", "北京", ""]
TIERS = ["gold", "silver", ""]
CATEGORIES = ["护肤", "彩妆", "香水"]
TOPICS = ["新品", "会员日", "直播"]
PROMOS = ["discount", "points", "gifts"]

# --- Data -------------------------------------------------------------------------------

member_data = st.fixed_dictionaries(
    {
        "city": st.sampled_from(CITIES),
        "gender": st.sampled_from(["M", "F", ""]),
        "age_days": st.one_of(st.none(), st.integers(10 * 365, 60 * 365)),
        "stage": st.sampled_from(["prospect", "active", "at_risk", "lapsed", "loyal"]),
        "created_days": st.integers(0, 900),
        # (store index 0/1 = brand, 2 = other brand, tier, points, joined days ago)
        "memberships": st.lists(
            st.tuples(st.integers(0, 2), st.sampled_from(TIERS), st.integers(0, 500), st.integers(0, 700)),
            max_size=2,
            unique_by=lambda m: m[0],
        ),
        # (store index, amount, days ago, categories)
        "orders": st.lists(
            st.tuples(
                st.integers(0, 2),
                st.sampled_from([Decimal("0.00"), Decimal("99.50"), Decimal("300.00"), Decimal("520.00")]),
                st.integers(0, 400),
                st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True),
            ),
            max_size=4,
        ),
        "preference": st.one_of(
            st.none(),
            st.tuples(
                st.lists(st.sampled_from(TOPICS), max_size=2, unique=True),
                st.lists(st.sampled_from(PROMOS), max_size=2, unique=True),
            ),
        ),
    }
)

# --- Rules ------------------------------------------------------------------------------

small_int = st.integers(0, 5)
ages = st.integers(10, 60)


def _between(values):
    return st.tuples(values, values).map(lambda pair: sorted(pair))


def _leaf(field: str, ops: list[str], value, **extra):
    return st.builds(
        lambda op, v, ex: {
            "field": field,
            "op": op,
            **({"value": v} if op not in ("is_set", "is_not_set") else {}),
            **ex,
        },
        st.sampled_from(ops),
        value,
        st.fixed_dictionaries(extra) if extra else st.just({}),
    )


def _num(field, values, **extra):
    return st.one_of(
        _leaf(field, ["=", "!=", ">", ">=", "<", "<="], values, **extra),
        _leaf(field, ["between"], _between(values), **extra),
    )


def _window():
    return st.one_of(st.none(), st.integers(1, 400))


def _with_window(leaf_strategy):
    return st.tuples(leaf_strategy, _window()).map(lambda p: {**p[0], **({"within_days": p[1]} if p[1] else {})})


leaves = st.one_of(
    _leaf("city", ["=", "!="], st.sampled_from(CITIES[:3])),
    _leaf("city", ["in", "not_in"], st.lists(st.sampled_from(CITIES[:3]), min_size=1, max_size=2)),
    _leaf("city", ["is_set", "is_not_set"], st.none()),
    _leaf("gender", ["=", "!="], st.sampled_from(["M", "F"])),
    _leaf(
        "lifecycle_stage",
        ["in", "not_in"],
        st.lists(st.sampled_from(["active", "at_risk", "loyal"]), min_size=1, max_size=2),
    ),
    _num("age", ages),
    _num("birth_month", st.integers(1, 12)),
    _leaf("store", ["=", "!="], st.sampled_from(["s0", "s1", "s2"])),
    _leaf("platform", ["in", "not_in"], st.lists(st.sampled_from(["tmall", "jd"]), min_size=1, max_size=2)),
    _leaf("tier", ["=", "!="], st.sampled_from(["gold", "silver"])),
    _num("points", st.integers(0, 500)),
    _leaf("joined", ["within_last_days"], st.integers(0, 700)),
    _with_window(_num("orders", small_int)),
    _with_window(_num("total_spent", st.sampled_from([0, 99.5, 300, 500, 1000]))),
    _num("last_order_days", st.integers(0, 400)),
    _with_window(
        _leaf("category", ["in", "all", "not_in"], st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2))
    ),
    _leaf("topics", ["in", "all", "not_in"], st.lists(st.sampled_from(TOPICS), min_size=1, max_size=2)),
    _leaf("promotion_types", ["in", "not_in"], st.lists(st.sampled_from(PROMOS), min_size=1, max_size=2)),
)

rules_strategy = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: {"all": items}),
        st.lists(children, min_size=1, max_size=3).map(lambda items: {"any": items}),
        children.map(lambda item: {"not": item}),
    ),
    max_leaves=6,
)

# --- Oracle -----------------------------------------------------------------------------


def _cmp(op, left, value):
    if left is None:
        return False
    if op == "between":
        return Decimal(str(value[0])) <= Decimal(str(left)) <= Decimal(str(value[1]))
    right = Decimal(str(value))
    left = Decimal(str(left))
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


def _age(birth: dt.date | None, today: dt.date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def evaluate(node, row, ctx: Context) -> bool:
    if "all" in node:
        return all(evaluate(child, row, ctx) for child in node["all"])
    if "any" in node:
        return any(evaluate(child, row, ctx) for child in node["any"])
    if "not" in node:
        return not evaluate(node["not"], row, ctx)
    field, op, value = node["field"], node["op"], node.get("value")
    member = row["member"]
    if field in ("city", "gender", "lifecycle_stage"):
        actual = getattr(member, field)
        if op == "is_set":
            return actual != ""
        if op == "is_not_set":
            return actual == ""
        values = value if isinstance(value, list) else [value]
        return actual in values if op in ("=", "in") else (actual != "" and actual not in values)
    if field == "age":
        return _cmp(op, _age(member.birth_date, ctx.today), value)
    if field == "birth_month":
        return _cmp(op, member.birth_date.month if member.birth_date else None, value)
    memberships = row["memberships"]
    if field in ("store", "platform", "tier"):
        attr = {"store": lambda m: m.store.code, "platform": lambda m: m.store.platform, "tier": lambda m: m.tier}[
            field
        ]
        values = value if isinstance(value, list) else [value]
        has = any(attr(m) in values for m in memberships)
        return not has if op in ("!=", "not_in") else has
    if field == "points":
        if op == "!=":
            return not any(m.points == value for m in memberships)
        return any(_cmp(op, m.points, value) for m in memberships)
    if field == "joined":
        first = ctx.today - dt.timedelta(days=value)
        return any(m.joined_at and timezone.localdate(m.joined_at) >= first for m in memberships)
    orders = row["orders"]
    if node.get("within_days"):
        since = ctx.now - dt.timedelta(days=node["within_days"])
        orders = [o for o in orders if o.placed_at >= since]
    if field == "orders":
        return _cmp(op, len(orders), value)
    if field == "total_spent":
        return _cmp(op, sum((o.amount for o in orders), Decimal(0)), value)
    if field == "last_order_days":
        if not row["orders"]:
            return False
        last = max(timezone.localdate(o.placed_at) for o in row["orders"])
        return _cmp(op, (ctx.today - last).days, value)
    if field == "category":
        if op == "all":
            return all(any(c in o.categories for o in orders) for c in value)
        has = any(set(value) & set(o.categories) for o in orders)
        return not has if op == "not_in" else has
    if field in ("topics", "promotion_types"):
        pref = row["preference"]
        items = getattr(pref, field) if pref else []
        if op == "all":
            return pref is not None and set(value) <= set(items)
        has = pref is not None and bool(set(value) & set(items))
        return not has if op == "not_in" else has
    raise AssertionError(field)


# --- The property -----------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(people=st.lists(member_data, min_size=1, max_size=6), rules=rules_strategy)
def test_compiled_rules_agree_with_python(brand, people, rules):
    validate(rules)
    other = StoreFactory(code="other-store", platform="jd", brand__code="other-brand")
    stores = [
        StoreFactory(brand=brand, code="s0", platform="tmall"),
        StoreFactory(brand=brand, code="s1", platform="jd"),
    ]
    all_stores = [*stores, other]
    now = TODAY_NOW
    ctx = Context.for_brand(brand.pk, now)
    with transaction.atomic():
        rows = []
        for index, person in enumerate(people):
            birth = None if person["age_days"] is None else ctx.today - dt.timedelta(days=person["age_days"])
            member = Member.objects.create(
                name=f"p{index}", city=person["city"], gender=person["gender"], birth_date=birth,
                lifecycle_stage=person["stage"], created_at=now - dt.timedelta(days=person["created_days"]),
                phone=f"+8613900{index:06d}",
            )  # fmt: skip
            memberships = [
                StoreMembership.objects.create(
                    member=member,
                    store=all_stores[s],
                    store_member_id=f"m{index}-{s}",
                    tier=tier,
                    points=points,
                    joined_at=now - dt.timedelta(days=joined),
                )  # fmt: skip
                for s, tier, points, joined in person["memberships"]
            ]
            orders = [
                Order.objects.create(
                    store=all_stores[s],
                    external_id=f"o{index}-{k}",
                    member=member,
                    amount=amount,
                    placed_at=now - dt.timedelta(days=days, hours=1),
                    categories=categories,
                )  # fmt: skip
                for k, (s, amount, days, categories) in enumerate(person["orders"])
            ]
            preference = None
            if person["preference"] is not None:
                topics, promos = person["preference"]
                preference = Preference.objects.create(
                    member=member, brand=brand, topics=topics, promotion_types=promos
                )
            rows.append(
                {
                    "member": member,
                    # Only the brand's stores count (store 2 belongs to another brand).
                    "memberships": [m for m in memberships if m.store.brand_id == brand.pk],
                    "orders": [o for o in orders if o.store.brand_id == brand.pk],
                    "preference": preference,
                }
            )
        expected = {row["member"].pk for row in rows if row["memberships"] and evaluate(rules, row, ctx)}
        actual = set(matching_members(rules, ctx).values_list("pk", flat=True))
        transaction.set_rollback(True)
    assert actual == expected, rules


def test_not_of_everyone_is_nobody(brand, tmall):
    """Found by the property above: Django negates an empty ``Q()`` to everyone."""
    from .conftest import shopper

    shopper(tmall)
    ctx = Context.for_brand(brand.pk)
    assert matching_members({"all": []}, ctx).count() == 1
    assert matching_members({"not": {"all": []}}, ctx).count() == 0

"""Compilation of valid segment rules into one ``Q`` over ``Member``: columns and
subqueries (``EXISTS``, and for order rules the forms of ``orders``), so a build is a
handful of set-based statements whatever the number of members.

Order rules read orders per candidate member by default: the selective conditions are
usually member columns (city, age, stage), and then only the candidates' orders are read
through the member indexes. ``order_strategy`` switches to one grouped pass over the
brand's orders for rules that leave most members as candidates (issue 27)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Q

from consent.models import Preference
from consent.reconsent import standing_on_older_version
from members.models import Member, Order, StoreMembership

from .context import EVERYONE, NOBODY, Context, start_of
from .fields import OLDER_NOTICE, RuleError, parse_date, parse_number
from .orders import (
    LOOKUP,
    ORDER_FIELDS,
    category_q,
    cmp_q,
    last_order_q,
    order_count_q,
    total_spent_q,
)
from .validation import validate


class JSONArrayHas(Expression):
    """``column`` (a JSON list of strings) holds any (or all) of ``values``.

    PostgreSQL: jsonb ``?|`` / ``?&`` (GIN-indexable); SQLite: ``json_each``.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, expression: Any, values: list[str], *, every: bool = False) -> None:
        super().__init__(output_field=BooleanField())
        self.expression = F(expression) if isinstance(expression, str) else expression
        self.values = list(dict.fromkeys(values))
        self.every = every

    def get_source_expressions(self) -> list[Any]:
        return [self.expression]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.expression,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple[Any, ...]]:
        sql, params = compiler.compile(self.expression)
        if connection.vendor == "postgresql":
            return f"({sql} {'?&' if self.every else '?|'} %s)", (*params, self.values)
        marks = ", ".join(["%s"] * len(self.values))
        if self.every:
            counted = f"(SELECT COUNT(DISTINCT j.value) FROM json_each({sql}) AS j WHERE j.value IN ({marks}))"  # noqa: S608 - compiled SQL and placeholders only
            return f"({counted} = {len(self.values)})", (*params, *self.values)
        exists = f"EXISTS (SELECT 1 FROM json_each({sql}) AS j WHERE j.value IN ({marks}))"  # noqa: S608 - as above
        return exists, (*params, *self.values)


def years_ago(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _age_q(op: str, value: Any, today: dt.date) -> Q:
    """Age comparisons become birth-date ranges (so an index on birth_date would serve)."""

    def at_least(years: int) -> Q:  # age >= years
        return Q(birth_date__lte=years_ago(today, years))

    def at_most(years: int) -> Q:  # age <= years
        return Q(birth_date__gt=years_ago(today, years + 1))

    def whole(number: Any) -> Decimal:
        return Decimal(str(number))

    if op == "between":
        low, high = whole(value[0]), whole(value[1])
        return at_least(int(-(-low // 1))) & at_most(int(high // 1))
    number = whole(value)
    ceil, floor = int(-(-number // 1)), int(number // 1)
    if op == ">=":
        return at_least(ceil)
    if op == ">":
        return at_least(floor + 1)
    if op == "<=":
        return at_most(floor)
    if op == "<":
        return at_most(ceil - 1)
    if number != floor:  # = 30.5 never holds; != 30.5 holds for every known age
        return NOBODY if op == "=" else Q(birth_date__isnull=False)
    equal = at_least(floor) & at_most(floor)
    return equal if op == "=" else Q(birth_date__isnull=False) & ~equal


def _text_q(column: str, op: str, value: Any) -> Q:
    if op == "is_set":
        return ~Q(**{column: ""})
    if op == "is_not_set":
        return Q(**{column: ""})
    values = value if isinstance(value, list) else [value]
    matches = Q(**{f"{column}__in": values})
    return matches if op in ("=", "in") else ~Q(**{column: ""}) & ~matches


def _date_q(column: str, op: str, value: Any, ctx: Context, *, is_datetime: bool) -> Q:
    """Compare the local calendar date of ``column`` (a datetime) with ``value``."""
    if op == "within_last_days":
        first_day = ctx.today - dt.timedelta(days=value)
        return Q(**{f"{column}__gte": start_of(first_day)}) if is_datetime else Q(**{f"{column}__gte": first_day})
    if op == "between":
        low, high = parse_date(value[0]), parse_date(value[1])
        return _date_q(column, ">=", low.isoformat(), ctx, is_datetime=is_datetime) & _date_q(
            column, "<=", high.isoformat(), ctx, is_datetime=is_datetime
        )
    day = parse_date(value)
    if not is_datetime:
        return Q(**{f"{column}__{LOOKUP[op]}": day})
    start, next_start = start_of(day), start_of(day + dt.timedelta(days=1))
    return {
        "=": Q(**{f"{column}__gte": start, f"{column}__lt": next_start}),
        ">": Q(**{f"{column}__gte": next_start}),
        ">=": Q(**{f"{column}__gte": start}),
        "<": Q(**{f"{column}__lt": start}),
        "<=": Q(**{f"{column}__lt": next_start}),
    }[op]


def _membership_q(ctx: Context, condition: Q, *, negate: bool) -> Q:
    has = Q(Exists(StoreMembership.objects.filter(condition, member=OuterRef("pk"), store__brand_id=ctx.brand_id)))
    return ~has if negate else has


def _leaf_q(node: dict[str, Any], ctx: Context) -> Q:
    name, op, value = node["field"], node["op"], node.get("value")
    within = node.get("within_days")
    negated = op in ("!=", "not_in")
    if name in ("city", "province", "locale"):
        return _text_q(name, op, value)
    if name in ("gender", "lifecycle_stage"):
        return _text_q(name, op, value)
    if name == "age":
        return _age_q(op, value, ctx.today)
    if name == "birth_month":
        return cmp_q(
            "birth_date__month", op, parse_number(value) if op != "between" else [parse_number(v) for v in value]
        )
    if name == "member_since":
        return _date_q("created_at", op, value, ctx, is_datetime=True)
    if name in ("store", "platform", "tier"):
        column = {"store": "store__code", "platform": "store__platform", "tier": "tier"}[name]
        if op in ("is_set", "is_not_set"):
            return _membership_q(ctx, ~Q(tier=""), negate=op == "is_not_set")
        values = value if isinstance(value, list) else [value]
        return _membership_q(ctx, Q(**{f"{column}__in": values}), negate=negated)
    if name == "points":
        if op == "!=":
            return _membership_q(ctx, Q(points=value), negate=True)
        return _membership_q(ctx, cmp_q("points", op, value), negate=False)
    if name == "joined":
        return _membership_q(ctx, _date_q("joined_at", op, value, ctx, is_datetime=True), negate=False)
    if name == "orders":
        return order_count_q(ctx, op, value, within)
    if name == "total_spent":
        return total_spent_q(ctx, op, value, within)
    if name == "last_order_days":
        return last_order_q(ctx, op, value)
    if name == "category":
        return category_q(ctx, op, value, within, JSONArrayHas)
    if name in ("topics", "promotion_types", "preferred_channels"):
        column = "channels" if name == "preferred_channels" else name
        prefs = Preference.objects.filter(
            JSONArrayHas(column, value, every=op == "all"), member=OuterRef("pk"), brand_id=ctx.brand_id
        )
        return ~Q(Exists(prefs)) if op == "not_in" else Q(Exists(prefs))
    if name == OLDER_NOTICE:
        return _older_notice_q(ctx, op, value)
    raise RuleError([("", f"unknown field {name!r}")])  # validate() runs first; kept for safety


def _older_notice_q(ctx: Context, op: str, codes: list[str]) -> Q:
    """A standing consent to one of the purposes (``in``; to none of them for ``not_in``;
    to each of them for ``all``) rests on an older version of that purpose's notice."""

    def older(purpose_codes: list[str]) -> Q:
        return Q(Exists(standing_on_older_version(ctx.brand_id, purpose_codes).filter(member=OuterRef("pk"))))

    if op == "all":
        q = EVERYONE
        for code in dict.fromkeys(codes):
            q &= older([code])
        return q
    return ~older(codes) if op == "not_in" else older(codes)


def _node_q(node: dict[str, Any], ctx: Context) -> Q:
    if "all" in node:
        # An explicit "true", not Q(): Django negates an empty Q() to an empty Q(), which
        # would make {"not": {"all": []}} match everyone instead of nobody.
        q = EVERYONE if not node["all"] else Q()
        for child in node["all"]:
            q &= _node_q(child, ctx)
        return q
    if "any" in node:
        q = _node_q(node["any"][0], ctx)
        for child in node["any"][1:]:
            q |= _node_q(child, ctx)
        return q
    if "not" in node:
        return ~_node_q(node["not"], ctx)
    return _leaf_q(node, ctx)


def brand_population_q(ctx: Context) -> Q:
    """Everyone a brand's segment can start from: members (not merged away) of one of its stores."""
    return ~Q(status=Member.Status.MERGED) & Q(
        Exists(StoreMembership.objects.filter(member=OuterRef("pk"), store__brand_id=ctx.brand_id))
    )


def compile_rules(rules: dict[str, Any], ctx: Context) -> Q:
    """Valid rules → one condition on ``Member`` (brand population included)."""
    validate(rules)
    return brand_population_q(ctx) & _node_q(rules, ctx)


def matching_members(rules: dict[str, Any], ctx: Context) -> Any:
    return Member.objects.filter(compile_rules(rules, ctx))


# Reading one candidate's orders through the member index costs about as much as
# aggregating this many orders in one grouped pass (bench/segments, issue 27: ≈ 30 µs a
# candidate, ≈ 1 µs an order).
ORDERS_PER_CANDIDATE = 25


def _mentions_orders(node: dict[str, Any]) -> bool:
    for key in ("all", "any"):
        if key in node:
            return any(_mentions_orders(child) for child in node[key])
    if "not" in node:
        return _mentions_orders(node["not"])
    return node["field"] in ORDER_FIELDS


def order_strategy(rules: dict[str, Any], ctx: Context) -> Context:
    """``ctx`` with the way order rules read orders chosen for ``rules`` (``orders``):
    per member, unless PostgreSQL's planner expects the rules' other conditions (those
    ANDed at the top, with the brand's population) to leave so many candidates that
    grouping all the orders once is cheaper. One ``EXPLAIN`` without ``ANALYZE`` (no rows
    read) and one catalogue read, only when the rules mention orders; elsewhere (SQLite)
    per member."""
    validate(rules)
    if connection.vendor != "postgresql" or not _mentions_orders(rules):
        return ctx
    narrowing = brand_population_q(ctx)
    for child in rules.get("all", []):
        if not _mentions_orders(child):
            narrowing &= _node_q(child, ctx)
    sql, params = Member.objects.filter(narrowing).values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Order._meta.db_table])
        row = cursor.fetchone()
    candidates = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"]
    orders = row[0] if row else -1
    if orders < 0:  # never analysed: no estimate, keep the default
        return ctx
    return replace(ctx, per_member=candidates * ORDERS_PER_CANDIDATE <= orders)

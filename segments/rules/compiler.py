"""Compilation of valid segment rules into one ``Q`` over ``Member``: columns, ``EXISTS``
and ``IN (… GROUP BY … HAVING …)`` subqueries, so a build is a handful of set-based
statements whatever the number of members."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Count, Exists, Expression, F, Max, OuterRef, Q, Sum
from django.utils import timezone

from consent.models import Preference
from members.metrics import counted_orders
from members.models import Member, StoreMembership

from .fields import RuleError, parse_date, parse_number
from .validation import validate

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_LOOKUP = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
# A condition no member meets. Not ``Q(pk__in=[])``: Django compiles that by raising
# EmptyResultSet, which a queryset turns into "no rows" but ``sql_with_params`` (the
# dry-run count and the build's INSERT … SELECT) does not, so "age = 30.5" was a 500.
NOBODY = Q(pk__isnull=True)


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


@dataclass(frozen=True)
class Context:
    brand_id: int
    today: dt.date
    now: dt.datetime

    @classmethod
    def for_brand(cls, brand_id: int, now: dt.datetime | None = None) -> Context:
        now = now or timezone.now()
        return cls(brand_id=brand_id, today=timezone.localdate(now), now=now)


def years_ago(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _cmp_q(column: str, op: str, value: Any) -> Q:
    """``column op value`` for =, !=, <, <=, >, >=, between (known values only)."""
    if op == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if op == "!=":
        return Q(**{f"{column}__isnull": False}) & ~Q(**{column: value})
    return Q(**{f"{column}__{_LOOKUP[op]}": value})


def _holds_for_zero(op: str, value: Any) -> bool:
    if op == "between":
        return Decimal(str(value[0])) <= 0 <= Decimal(str(value[1]))
    return _CMP[op](Decimal(0), Decimal(str(value)))


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
        return Q(**{f"{column}__gte": _start_of(first_day)}) if is_datetime else Q(**{f"{column}__gte": first_day})
    if op == "between":
        low, high = parse_date(value[0]), parse_date(value[1])
        return _date_q(column, ">=", low.isoformat(), ctx, is_datetime=is_datetime) & _date_q(
            column, "<=", high.isoformat(), ctx, is_datetime=is_datetime
        )
    day = parse_date(value)
    if not is_datetime:
        return Q(**{f"{column}__{_LOOKUP[op]}": day})
    start, next_start = _start_of(day), _start_of(day + dt.timedelta(days=1))
    return {
        "=": Q(**{f"{column}__gte": start, f"{column}__lt": next_start}),
        ">": Q(**{f"{column}__gte": next_start}),
        ">=": Q(**{f"{column}__gte": start}),
        "<": Q(**{f"{column}__lt": start}),
        "<=": Q(**{f"{column}__lt": next_start}),
    }[op]


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _membership_q(ctx: Context, condition: Q, *, negate: bool) -> Q:
    has = Q(Exists(StoreMembership.objects.filter(condition, member=OuterRef("pk"), store__brand_id=ctx.brand_id)))
    return ~has if negate else has


def _orders(ctx: Context, within_days: int | None) -> Any:
    # The orders that count for metrics and lifecycle (cancelled and refunded ones only
    # with ORDERS_COUNT_REFUNDED_FOR_LIFECYCLE), so a rule agrees with the member's stage.
    orders = counted_orders().filter(store__brand_id=ctx.brand_id, member__isnull=False)
    if within_days:
        orders = orders.filter(placed_at__gte=ctx.now - dt.timedelta(days=within_days))
    return orders


def _aggregate_q(ctx: Context, aggregate: Any, op: str, value: Any, within_days: int | None) -> Q:
    """Members whose aggregate over their orders satisfies ``op value``; members without
    orders count as 0. One grouped subquery: ``pk IN (… HAVING p)`` when 0 fails the
    predicate, ``pk NOT IN (… HAVING NOT p)`` when 0 passes it."""
    grouped = _orders(ctx, within_days).values("member_id").annotate(total=aggregate)
    predicate = _cmp_q("total", op, value) if op != "!=" else ~Q(total=value)
    if _holds_for_zero(op, value):
        return ~Q(pk__in=grouped.filter(~predicate).values("member_id"))
    return Q(pk__in=grouped.filter(predicate).values("member_id"))


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
        return _cmp_q(
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
        return _membership_q(ctx, _cmp_q("points", op, value), negate=False)
    if name == "joined":
        return _membership_q(ctx, _date_q("joined_at", op, value, ctx, is_datetime=True), negate=False)
    if name == "orders":
        return _aggregate_q(ctx, Count("id"), op, value, within)
    if name == "total_spent":
        return _aggregate_q(ctx, Sum("amount"), op, value, within)
    if name == "last_order_days":
        return _last_order_q(ctx, op, value)
    if name == "category":
        has = JSONArrayHas("categories", value, every=op == "all")
        if op == "all":  # every category, each in some order (not necessarily one order)
            q = Q()
            for item in value:
                q &= Q(pk__in=_orders(ctx, within).filter(JSONArrayHas("categories", [item])).values("member_id"))
            return q
        matched = Q(pk__in=_orders(ctx, within).filter(has).values("member_id"))
        return ~matched if op == "not_in" else matched
    if name in ("topics", "promotion_types", "preferred_channels"):
        column = "channels" if name == "preferred_channels" else name
        prefs = Preference.objects.filter(
            JSONArrayHas(column, value, every=op == "all"), member=OuterRef("pk"), brand_id=ctx.brand_id
        )
        return ~Q(Exists(prefs)) if op == "not_in" else Q(Exists(prefs))
    raise RuleError([("", f"unknown field {name!r}")])  # validate() runs first; kept for safety


def _last_order_q(ctx: Context, op: str, value: Any) -> Q:
    """Days since the last order, in local calendar days; no orders → unknown (false)."""

    def day_start(days: Decimal) -> dt.datetime:
        return _start_of(ctx.today - dt.timedelta(days=int(days)))

    # "last order N days ago" ⇔ max(placed_at) falls on the local day today - N.
    def bound(op_: str, days: Decimal) -> Q:
        floor = days.to_integral_value(rounding="ROUND_FLOOR")
        ceil = days.to_integral_value(rounding="ROUND_CEILING")
        if op_ == ">=":  # at least N days ago: last order before the start of day today-N+1
            return Q(last__lt=day_start(ceil - 1))
        if op_ == ">":
            return Q(last__lt=day_start(floor))
        if op_ == "<=":
            return Q(last__gte=day_start(floor))
        if op_ == "<":
            return Q(last__gte=day_start(ceil - 1))
        raise AssertionError(op_)

    if op == "between":
        predicate = bound(">=", Decimal(str(value[0]))) & bound("<=", Decimal(str(value[1])))
    elif op in ("=", "!="):
        days = Decimal(str(value))
        equal = bound(">=", days) & bound("<=", days) if days == days.to_integral_value() else NOBODY
        predicate = equal if op == "=" else ~equal
    else:
        predicate = bound(op, Decimal(str(value)))
    grouped = _orders(ctx, None).values("member_id").annotate(last=Max("placed_at"))
    return Q(pk__in=grouped.filter(predicate).values("member_id"))


def _node_q(node: dict[str, Any], ctx: Context) -> Q:
    if "all" in node:
        # An explicit "true", not Q(): Django negates an empty Q() to an empty Q(), which
        # would make {"not": {"all": []}} match everyone instead of nobody.
        q = Q(pk__isnull=False) if not node["all"] else Q()
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

"""Order rules (orders, total_spent, last_order_days, category) in two equivalent forms.

Only orders that count are read (``members.metrics.counted_orders``: no cancelled or
refunded ones by default, so a rule agrees with the member's lifecycle stage), at the
brand's stores, ``within_days`` of the build's start when the rule says so.

- Per member (``Context.per_member``, the default): subqueries correlated on the member,
  read through the (member, placed_at) and (member) indexes of the order table:
  ``orders >= N`` is an ``EXISTS`` with ``OFFSET N-1 LIMIT 1`` that stops at the Nth order,
  ``total_spent`` a correlated ``SUM``, "days since" the member's newest order. When the
  other rules leave a few thousand candidates (city, age, stage …), only their orders are
  read: the example rule at 1M members / 5M orders reads ≈ 20k members' orders instead of
  aggregating the brand's 4.5M (issue 27).
- Grouped: ``pk IN (… GROUP BY member HAVING …)`` over all the brand's orders, once. For
  rules that leave most of the brand's members as candidates, one hash aggregate beats a
  million index probes; ``compiler.order_strategy`` asks the planner which case a rule is.

PostgreSQL cannot turn one form into the other by itself: a correlated ``SUM`` or an
``EXISTS`` with ``OFFSET`` always runs per row, and a grouped ``IN`` always aggregates
everything first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, Exists, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual

from members.metrics import counted_orders

from .context import EVERYONE, NOBODY, Context, start_of

LOOKUP = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
LOOKUP_CLASS = {"=": Exact, ">": GreaterThan, ">=": GreaterThanOrEqual, "<": LessThan, "<=": LessThanOrEqual}
ORDER_FIELDS = frozenset({"orders", "total_spent", "last_order_days", "category"})


def cmp_q(column: str, op: str, value: Any) -> Q:
    """``column op value`` for =, !=, <, <=, >, >=, between (known values only)."""
    if op == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if op == "!=":
        return Q(**{f"{column}__isnull": False}) & ~Q(**{column: value})
    return Q(**{f"{column}__{LOOKUP[op]}": value})


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _ceil(number: Decimal) -> int:
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


def _floor(number: Decimal) -> int:
    return int(number.to_integral_value(rounding="ROUND_FLOOR"))


def brand_orders(ctx: Context, within_days: int | None, *, correlated: bool) -> Any:
    """The orders that count for the rules: of the outer member (``correlated``), or of
    every member of the brand."""
    orders = counted_orders().filter(store__brand_id=ctx.brand_id).order_by()
    orders = orders.filter(member=OuterRef("pk")) if correlated else orders.filter(member__isnull=False)
    if within_days:
        orders = orders.filter(placed_at__gte=ctx.now - dt.timedelta(days=within_days))
    return orders


def _holds_for_zero(op: str, value: Any) -> bool:
    if op == "between":
        return _decimal(value[0]) <= 0 <= _decimal(value[1])
    zero, number = Decimal(0), _decimal(value)
    return {
        "=": zero == number,
        "!=": zero != number,
        ">": zero > number,
        ">=": zero >= number,
        "<": zero < number,
        "<=": zero <= number,
    }[op]


def _grouped_q(ctx: Context, aggregate: Any, op: str, value: Any, within_days: int | None) -> Q:
    """Members whose aggregate over their orders satisfies ``op value``; members without
    orders count as 0. One grouped subquery: ``pk IN (… HAVING p)`` when 0 fails the
    predicate, ``pk NOT IN (… HAVING NOT p)`` when 0 passes it."""
    grouped = brand_orders(ctx, within_days, correlated=False).values("member_id").annotate(total=aggregate)
    predicate = cmp_q("total", op, value) if op != "!=" else ~Q(total=value)
    if _holds_for_zero(op, value):
        return ~Q(pk__in=grouped.filter(~predicate).values("member_id"))
    return Q(pk__in=grouped.filter(predicate).values("member_id"))


def order_count_q(ctx: Context, op: str, value: Any, within_days: int | None) -> Q:
    """``orders op value`` as "has at least k orders" tests (whole k, so a fractional value
    means what it says). Per member each is an ``EXISTS`` over the member's orders with
    ``OFFSET k-1 LIMIT 1``, reading at most k of them; grouped, ``pk IN (… HAVING COUNT(*) >= k)``."""

    def at_least(k: int) -> Q:
        if k <= 0:
            return EVERYONE
        if ctx.per_member:
            return Q(Exists(brand_orders(ctx, within_days, correlated=True).values("pk")[k - 1 : k]))
        grouped = brand_orders(ctx, within_days, correlated=False).values("member_id").annotate(n=Count("id"))
        return Q(pk__in=grouped.filter(n__gte=k).values("member_id"))

    def exactly(number: Decimal) -> Q:
        if number != number.to_integral_value():
            return NOBODY
        return at_least(int(number)) & ~at_least(int(number) + 1)

    if op == "between":
        return at_least(_ceil(_decimal(value[0]))) & ~at_least(_floor(_decimal(value[1])) + 1)
    number = _decimal(value)
    if op == ">=":
        return at_least(_ceil(number))
    if op == ">":
        return at_least(_floor(number) + 1)
    if op == "<=":
        return ~at_least(_floor(number) + 1)
    if op == "<":
        return ~at_least(_ceil(number))
    if op == "=":
        return exactly(number)
    return ~exactly(number)  # "!="


def total_spent_q(ctx: Context, op: str, value: Any, within_days: int | None) -> Q:
    """``total_spent op value``. Per member: a correlated ``SUM`` over the member's orders
    (0 without any) compared with the value."""
    if not ctx.per_member:
        return _grouped_q(ctx, Sum("amount"), op, value, within_days)
    orders = brand_orders(ctx, within_days, correlated=True)
    spent = Coalesce(
        Subquery(orders.values("member_id").annotate(total=Sum("amount")).values("total")),
        Value(Decimal(0)),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    if op == "between":
        return Q(GreaterThanOrEqual(spent, _decimal(value[0]))) & Q(LessThanOrEqual(spent, _decimal(value[1])))
    if op == "!=":
        return ~Q(Exact(spent, _decimal(value)))
    return Q(LOOKUP_CLASS[op](spent, _decimal(value)))


def last_order_q(ctx: Context, op: str, value: Any) -> Q:
    """Days since the last order, in local calendar days; no orders → unknown (false).
    Per member: the member's newest counted order, read backwards through the (member,
    placed_at) index; grouped: ``MAX(placed_at)`` per member of the brand."""
    if ctx.per_member:
        newest = Subquery(brand_orders(ctx, None, correlated=True).order_by("-placed_at").values("placed_at")[:1])

        def last(lookup: str, moment: dt.datetime) -> Q:
            return Q(LOOKUP_CLASS[{"lt": "<", "gte": ">="}[lookup]](newest, moment))

    else:

        def last(lookup: str, moment: dt.datetime) -> Q:
            return Q(**{f"last__{lookup}": moment})

    predicate = _days_since(ctx, op, value, last)
    if ctx.per_member:
        # Stated, not left to NULL logic: a member without orders has no "days since".
        return Q(IsNull(newest, False)) & predicate
    grouped = brand_orders(ctx, None, correlated=False).values("member_id").annotate(last=Max("placed_at"))
    return Q(pk__in=grouped.filter(predicate).values("member_id"))


def _days_since(ctx: Context, op: str, value: Any, last: Callable[[str, dt.datetime], Q]) -> Q:
    """ "The last order was ``op value`` days ago" as bounds on the last order's time:
    N days ago ⇔ it falls on the local day today - N."""

    def day_start(days: int) -> dt.datetime:
        return start_of(ctx.today - dt.timedelta(days=days))

    def bound(op_: str, days: Decimal) -> Q:
        if op_ == ">=":  # at least N days ago: before the start of day today-N+1
            return last("lt", day_start(_ceil(days) - 1))
        if op_ == ">":
            return last("lt", day_start(_floor(days)))
        if op_ == "<=":
            return last("gte", day_start(_floor(days)))
        if op_ == "<":
            return last("gte", day_start(_ceil(days) - 1))
        raise AssertionError(op_)

    if op == "between":
        return bound(">=", _decimal(value[0])) & bound("<=", _decimal(value[1]))
    if op in ("=", "!="):
        days = _decimal(value)
        equal = bound(">=", days) & bound("<=", days) if days == days.to_integral_value() else NOBODY
        return equal if op == "=" else ~equal
    return bound(op, _decimal(value))


def category_q(ctx: Context, op: str, value: list[str], within_days: int | None, has: Callable[..., Any]) -> Q:
    """An order (``in``; none for ``not_in``) or, for ``all``, each category in some order
    (not necessarily one). A plain correlated ``EXISTS`` in both forms: PostgreSQL plans it
    as a semi-join or a hashed subplan, whichever is cheaper for the candidates."""
    orders = brand_orders(ctx, within_days, correlated=True)
    if op == "all":
        q = Q()
        for item in value:
            q &= Q(Exists(orders.filter(has("categories", [item]))))
        return q
    matched = Q(Exists(orders.filter(has("categories", value))))
    return ~matched if op == "not_in" else matched

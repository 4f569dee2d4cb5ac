"""Segment rules (DESIGN.md ⚑ "Segment rules"): validation and compilation to one query.

Rules are JSON: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` nest; a leaf is
``{"field": ..., "op": ..., "value": ..., "within_days": N}``. ``validate`` names every
problem with its path (``all[2].any[0].op``); ``compile_rules`` turns valid rules into a
``Q`` over ``Member`` made of columns, ``EXISTS`` and ``IN (… GROUP BY … HAVING …)``
subqueries, so a build is a handful of set-based statements whatever the number of members.

Semantics, the same in SQL and in the test oracle:
- A comparison with an unknown value (no birthday, blank city) is false, also for ``!=``
  and ``not_in``; wrap a rule in ``not`` to include the unknowns.
- Membership fields (store, platform, tier, points, joined) ask "has a membership at one of
  the brand's stores such that …"; ``!=`` / ``not_in`` ask "has no such membership".
- Order fields (orders, total_spent, category, last_order_days) count only orders at the
  brand's stores, optionally ``within_days`` of today; a person without orders has 0 orders
  and 0 spent.
- Preference fields (topics, promotion_types, preferred_channels) read the member's
  preferences for this brand; list operators are ``in`` (any of), ``all`` and ``not_in``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import BooleanField, Count, Exists, Expression, F, Max, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Preference
from members.models import Gender, LifecycleStage, Member, Order, Platform, StoreMembership

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_VALUES = 1000
MAX_WITHIN_DAYS = 3660

TEXT_OPS = ("=", "!=", "in", "not_in", "is_set", "is_not_set")
CHOICE_OPS = ("=", "!=", "in", "not_in")
NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "between")
DATE_OPS = ("=", ">", ">=", "<", "<=", "between", "within_last_days")
TAG_OPS = ("in", "all", "not_in")
NO_VALUE_OPS = ("is_set", "is_not_set")

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_LOOKUP = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


class RuleError(ValueError):
    """Rules that cannot be built; ``errors`` lists ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in errors))

    @property
    def messages(self) -> list[str]:
        return [f"{path}: {message}" if path else message for path, message in self.errors]


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, choice, number, date, tags
    group: str
    help: str | Promise
    window: bool = False  # accepts within_days
    choices: tuple[str, ...] = ()

    @property
    def group_label(self) -> str | Promise:
        return GROUPS.get(self.group, self.group)

    @property
    def ops(self) -> tuple[str, ...]:
        return {"text": TEXT_OPS, "choice": CHOICE_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "tags": TAG_OPS}[
            self.kind
        ]


def _values(choices: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(value) for value, _label in choices)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        Field("city", "text", "profile", _("City, as written in store records (上海, 杭州).")),
        Field("province", "text", "profile", _("Province (浙江, 广东).")),
        Field("gender", "choice", "profile", _("M or F."), choices=_values(Gender.choices)),
        Field("age", "number", "profile", _("Age in whole years today, from the birth date.")),
        Field("birth_month", "number", "profile", _("Month of birth, 1-12 (birthday campaigns).")),
        Field("locale", "text", "profile", _("Language code (zh-hans, zh-hant, en, ru).")),
        Field("lifecycle_stage", "choice", "profile", _("Lifecycle stage."), choices=_values(LifecycleStage.choices)),
        Field("member_since", "date", "profile", _("When the person first became known to the platform.")),
        Field("store", "text", "membership", _("Code of one of the brand's stores the person is a member of.")),
        Field(
            "platform", "choice", "membership", _("Platform of a store membership."), choices=_values(Platform.choices)
        ),
        Field("tier", "text", "membership", _("Membership tier at one of the brand's stores.")),
        Field("points", "number", "membership", _("Points of a membership at one of the brand's stores.")),
        Field("joined", "date", "membership", _("When the person joined one of the brand's stores.")),
        Field("orders", "number", "orders", _("Number of orders at the brand's stores."), window=True),
        Field("total_spent", "number", "orders", _("Sum of order amounts at the brand's stores."), window=True),
        Field("last_order_days", "number", "orders", _("Days since the last order at the brand's stores.")),
        Field("category", "tags", "orders", _("Category of an order at the brand's stores."), window=True),
        Field("topics", "tags", "preferences", _("Topics the person asked to hear about.")),
        Field(
            "promotion_types",
            "tags",
            "preferences",
            _("Promotion types the person likes."),
            choices=_values(Preference.PromotionType.choices),
        ),
        Field("preferred_channels", "tags", "preferences", _("Preferred channels."), choices=_values(Channel.choices)),
    ]
}
LEAF_KEYS = {"field", "op", "value", "within_days"}
# Display names of the field groups in the admin's rule editor.
GROUPS = {
    "profile": _("profile"),
    "membership": _("membership"),
    "orders": _("orders"),
    "preferences": _("preferences"),
}


# --- Validation ---------------------------------------------------------------------------


@dataclass
class _Checker:
    errors: list[tuple[str, str]] = field(default_factory=list)
    conditions: int = 0

    def fail(self, path: str, message: str) -> None:
        # Messages are in the active language (the admin's, or the API caller's
        # Accept-Language); paths, field names and operators stay as written.
        self.errors.append((path, message))

    def node(self, node: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.fail(path, _("rules nest deeper than %(n)s levels") % {"n": MAX_DEPTH})
            return
        if not isinstance(node, dict):
            self.fail(path, _("expected an object with all, any, not or field, got %(value)s") % {"value": _show(node)})
            return
        groups = [key for key in ("all", "any", "not") if key in node]
        if groups:
            if len(node) != 1:
                extra = sorted(set(node) - {groups[0]})
                self.fail(
                    path,
                    _("a group has only one key (%(key)s); remove %(extra)s")
                    % {"key": groups[0], "extra": ", ".join(map(repr, extra))},
                )
                return
            key = groups[0]
            child = node[key]
            if key == "not":
                self.node(child, _join(path, "not"), depth + 1)
                return
            if not isinstance(child, list):
                self.fail(_join(path, key), _("expected a list of rules, got %(value)s") % {"value": _show(child)})
            elif key == "any" and not child:
                self.fail(_join(path, key), _("an empty 'any' matches nobody; add a rule or remove it"))
            else:
                for index, item in enumerate(child):
                    self.node(item, f"{_join(path, key)}[{index}]", depth + 1)
            return
        if "field" not in node:
            self.fail(
                path,
                _("expected all, any, not or field; got keys %(keys)s") % {"keys": ", ".join(map(repr, sorted(node)))},
            )
            return
        self.leaf(node, path)

    def leaf(self, node: dict[str, Any], path: str) -> None:
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail(path, _("more than %(n)s conditions") % {"n": MAX_CONDITIONS})
        unknown = sorted(set(node) - LEAF_KEYS)
        if unknown:
            self.fail(
                path,
                _("unknown key %(keys)s (a rule has field, op, value, within_days)")
                % {"keys": ", ".join(map(repr, unknown))},
            )
        name = node["field"]
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            self.fail(
                _join(path, "field"),
                _("unknown field %(field)s (known: %(known)s)") % {"field": _show(name), "known": ", ".join(FIELDS)},
            )
            return
        op = node.get("op")
        if op not in spec.ops:
            self.fail(
                _join(path, "op"),
                _("unknown operator %(op)s for %(field)s (use one of %(ops)s)")
                % {"op": _show(op), "field": name, "ops": ", ".join(spec.ops)},
            )
            return
        if "within_days" in node:
            days = node["within_days"]
            if not spec.window:
                self.fail(_join(path, "within_days"), _("%(field)s does not take within_days") % {"field": name})
            elif not _is_int(days) or not 1 <= days <= MAX_WITHIN_DAYS:
                self.fail(
                    _join(path, "within_days"),
                    _("expected whole days 1-%(max)s, got %(value)s") % {"max": MAX_WITHIN_DAYS, "value": _show(days)},
                )
        value_path = _join(path, "value")
        if op in NO_VALUE_OPS:
            if "value" in node:
                self.fail(value_path, _("%(op)s takes no value") % {"op": op})
            return
        if "value" not in node:
            self.fail(value_path, _("%(field)s %(op)s needs a value") % {"field": name, "op": op})
            return
        problem = _value_problem(spec, op, node["value"])
        if problem:
            self.fail(value_path, problem)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _scalar_problem(spec: Field, value: Any) -> str | None:
    if spec.kind == "number":
        return (
            None
            if _number(value) is not None
            else _("%(field)s needs a number, got %(value)s") % {"field": spec.name, "value": _show(value)}
        )
    if spec.kind == "date":
        return (
            None
            if _date(value)
            else _("%(field)s needs a date as YYYY-MM-DD, got %(value)s") % {"field": spec.name, "value": _show(value)}
        )
    if not isinstance(value, str) or not value.strip():
        return _("%(field)s needs non-empty text, got %(value)s") % {"field": spec.name, "value": _show(value)}
    if spec.choices and value not in spec.choices:
        return _("%(value)s is not a %(field)s (use one of %(choices)s)") % {
            "value": _show(value),
            "field": spec.name,
            "choices": ", ".join(spec.choices),
        }
    return None


def _value_problem(spec: Field, op: str, value: Any) -> str | None:
    if op in ("in", "not_in", "all"):
        if not isinstance(value, list) or not value:
            return _("%(op)s needs a non-empty list, got %(value)s") % {"op": op, "value": _show(value)}
        if len(value) > MAX_VALUES:
            return _("at most %(n)s values") % {"n": MAX_VALUES}
        for item in value:
            problem = _scalar_problem(spec, item)
            if problem:
                return problem
        return None
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return _("between needs [low, high], got %(value)s") % {"value": _show(value)}
        problem = _scalar_problem(spec, value[0]) or _scalar_problem(spec, value[1])
        if problem:
            return problem
        low, high = (_number(v) for v in value) if spec.kind == "number" else (_date(v) for v in value)
        return _("between needs low <= high, got %(value)s") % {"value": _show(value)} if low > high else None
    if op == "within_last_days":
        return (
            None
            if _is_int(value) and value >= 0
            else _("within_last_days needs whole days, got %(value)s") % {"value": _show(value)}
        )
    return _scalar_problem(spec, value)


def validate(rules: Any) -> None:
    """Raise ``RuleError`` naming every problem (path, field, operator, value)."""
    checker = _Checker()
    checker.node(rules, "", 0)
    if checker.errors:
        raise RuleError(checker.errors)


# --- Compilation ---------------------------------------------------------------------------


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


def _years_ago(today: dt.date, years: int) -> dt.date:
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
        return Q(birth_date__lte=_years_ago(today, years))

    def at_most(years: int) -> Q:  # age <= years
        return Q(birth_date__gt=_years_ago(today, years + 1))

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
        return Q(pk__in=[]) if op == "=" else Q(birth_date__isnull=False)
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
        low, high = _date(value[0]), _date(value[1])
        return _date_q(column, ">=", low.isoformat(), ctx, is_datetime=is_datetime) & _date_q(
            column, "<=", high.isoformat(), ctx, is_datetime=is_datetime
        )
    day = _date(value)
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
    orders = Order.objects.filter(store__brand_id=ctx.brand_id, member__isnull=False)
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
        return _cmp_q("birth_date__month", op, _number(value) if op != "between" else [_number(v) for v in value])
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
        equal = bound(">=", days) & bound("<=", days) if days == days.to_integral_value() else Q(pk__in=[])
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

"""Validation of segment rules: every problem named with its path (``all[2].any[0].op``),
the field, the operator and the value, in the active language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from .fields import (
    EARLIEST_DATE,
    FIELDS,
    LATEST_DATE,
    LEAF_KEYS,
    MAX_CONDITIONS,
    MAX_DAYS_AGO,
    MAX_DEPTH,
    MAX_PLACES,
    MAX_TEXT,
    MAX_VALUES,
    MAX_WITHIN_DAYS,
    NO_VALUE_OPS,
    UNSTORABLE,
    Field,
    RuleError,
    is_int,
    parse_date,
    parse_number,
)


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
            elif not is_int(days) or not 1 <= days <= MAX_WITHIN_DAYS:
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


def _number_problem(spec: Field, value: Any) -> str | None:
    number = parse_number(value)
    if number is None:
        return _("%(field)s needs a number, got %(value)s") % {"field": spec.name, "value": _show(value)}
    # Bounds keep the compiled query inside its column types, dates and timedeltas (a
    # points value over 2^31 is an error in PostgreSQL, an age of a million years has no
    # birth date); the places keep it inside PostgreSQL's numeric.
    if (spec.low is not None and number < spec.low) or (spec.high is not None and number > spec.high):
        return _("%(field)s needs a number from %(low)s to %(high)s, got %(value)s") % {
            "field": spec.name,
            "low": spec.low,
            "high": spec.high,
            "value": _show(value),
        }
    if -number.normalize().as_tuple().exponent > MAX_PLACES:
        return _("%(field)s takes at most %(n)s decimal places, got %(value)s") % {
            "field": spec.name,
            "n": MAX_PLACES,
            "value": _show(value),
        }
    return None


def _scalar_problem(spec: Field, value: Any) -> str | None:
    if spec.kind == "number":
        return _number_problem(spec, value)
    if spec.kind == "date":
        return (
            None
            if parse_date(value)
            else _("%(field)s needs a date as YYYY-MM-DD from %(first)s to %(last)s, got %(value)s")
            % {"field": spec.name, "first": EARLIEST_DATE, "last": LATEST_DATE, "value": _show(value)}
        )
    if not isinstance(value, str) or not value.strip():
        return _("%(field)s needs non-empty text, got %(value)s") % {"field": spec.name, "value": _show(value)}
    if len(value) > MAX_TEXT:
        return _("%(field)s values are at most %(n)s characters") % {"field": spec.name, "n": MAX_TEXT}
    if UNSTORABLE.search(value):
        return _("%(field)s values cannot hold NUL (\\u0000) or unpaired surrogates, got %(value)s") % {
            "field": spec.name,
            "value": _show(value),
        }
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
        low, high = (parse_number(v) for v in value) if spec.kind == "number" else (parse_date(v) for v in value)
        return _("between needs low <= high, got %(value)s") % {"value": _show(value)} if low > high else None
    if op == "within_last_days":
        return (
            None
            if is_int(value) and 0 <= value <= MAX_DAYS_AGO
            else _("within_last_days needs whole days from 0 to %(max)s, got %(value)s")
            % {"max": MAX_DAYS_AGO, "value": _show(value)}
        )
    return _scalar_problem(spec, value)


def validate(rules: Any) -> None:
    """Raise ``RuleError`` naming every problem (path, field, operator, value)."""
    checker = _Checker()
    checker.node(rules, "", 0)
    if checker.errors:
        raise RuleError(checker.errors)

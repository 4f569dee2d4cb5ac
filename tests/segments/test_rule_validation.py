"""The rule validator names the bad field, operator or value and its path in the JSON."""

from __future__ import annotations

import pytest
from django.utils import translation

from segments.demo import EXAMPLE_RULES
from segments.rules import RuleError, validate


@pytest.fixture(autouse=True)
def _english():
    """The messages are read in English here; they follow the active language (the
    admin's or the API caller's), which ``test_messages_follow_the_language`` checks."""
    with translation.override("en"):
        yield


def problems(rules) -> list[str]:
    with pytest.raises(RuleError) as caught:
        validate(rules)
    return caught.value.messages


def test_the_design_example_is_valid():
    validate(EXAMPLE_RULES)


def test_everyone_is_a_valid_rule():
    validate({"all": []})


def test_unknown_field_is_named_with_its_path():
    rules = {
        "all": [{"field": "city", "op": "=", "value": "上海"}, {"any": [{"field": "citty", "op": "=", "value": "x"}]}]
    }
    [message] = problems(rules)
    assert message.startswith("all[1].any[0].field: unknown field 'citty'")
    assert "known: city" in message


def test_unknown_operator_lists_the_allowed_ones():
    [message] = problems({"field": "age", "op": "~", "value": 3})
    assert message.startswith("op: unknown operator '~' for age")
    assert "between" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "age", "op": ">=", "value": "old"}, "value: age needs a number, got 'old'"),
        ({"field": "age", "op": "between", "value": [40, 25]}, "value: between needs low <= high"),
        ({"field": "city", "op": "in", "value": []}, "value: in needs a non-empty list"),
        ({"field": "gender", "op": "=", "value": "X"}, "value: 'X' is not a gender"),
        ({"field": "joined", "op": ">=", "value": "2026-13-01"}, "value: joined needs a date as YYYY-MM-DD"),
        (
            {"field": "city", "op": "=", "value": "上海", "within_days": 30},
            "within_days: city does not take within_days",
        ),
        ({"field": "orders", "op": ">=", "value": 2, "within_days": 0}, "within_days: expected whole days"),
        ({"field": "orders", "op": ">=", "value": 2, "window": 3}, "unknown key 'window'"),
        ({"field": "city", "op": "is_set", "value": "x"}, "value: is_set takes no value"),
        ({"field": "orders", "op": ">="}, "value: orders >= needs a value"),
        ({"any": []}, "any: an empty 'any' matches nobody"),
        ({"all": {"field": "city"}}, "all: expected a list of rules"),
        ({"all": [], "any": []}, "a group has only one key"),
        ([1, 2], "expected an object"),
        ({"not": {"nope": 1}}, "not: expected all, any, not or field"),
    ],
)
def test_bad_rules_are_explained(rule, expected):
    assert any(expected in message for message in problems(rule)), problems(rule)


def test_every_problem_is_reported_not_just_the_first():
    assert len(problems({"all": [{"field": "a", "op": "="}, {"field": "age", "op": "~"}]})) == 2


def test_depth_and_size_are_bounded():
    deep: dict = {"field": "city", "op": "=", "value": "x"}
    for _ in range(10):
        deep = {"not": deep}
    assert any("deeper than" in message for message in problems(deep))
    wide = {"all": [{"field": "city", "op": "=", "value": "x"}] * 101}
    assert any("more than 100 conditions" in message for message in problems(wide))


def test_messages_follow_the_language():
    rules = {"all": [{"field": "citty", "op": "=", "value": "x"}]}
    with translation.override("zh-hans"):
        [message] = problems(rules)
    assert message.startswith("all[0].field: 未知字段 'citty'（可用字段：city, ")

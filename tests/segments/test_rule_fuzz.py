"""Segment rules from strangers never make a server error: generated payloads, valid-ish
and malformed (lists where objects belong, numbers as field names, huge numbers, unknown
operators, empty groups, deep nesting, NUL and far dates), posted to the editor's live
count and to "add segment" are either counted/saved or refused with a message."""

from __future__ import annotations

import json
import string

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.rules import FIELDS

from .conftest import grant, shopper

pytestmark = pytest.mark.django_db

OPS = sorted({op for spec in FIELDS.values() for op in spec.ops} | {"~", "", "like", "IN"})
HUGE = [2**31, 2**31 - 1, -(2**31) - 1, 2**63, 10**30, 10**400, -(10**30)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["上海", "gold", "M", "active", "sms", "护肤", "discount", "", " ", "\x00", "a\x00b"]),
    st.sampled_from(["2024-01-01", "0001-01-01", "9999-12-31", "1900-02-29", "2024-02-30", "1e999999", "1e-999999"]),
    st.sampled_from(["NaN", "-Infinity", "12", "3.5", "1_000", " 7 ", "9" * 40]),
    st.text(alphabet=string.printable + "上海\x00\u202e", max_size=12),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=3), scalars, max_size=2))


@st.composite
def leaves(draw):
    node = {}
    if draw(st.booleans()):
        node["field"] = draw(st.one_of(st.sampled_from(sorted(FIELDS)), scalars))
    else:
        node["field"] = draw(st.sampled_from(sorted(FIELDS)))
    if draw(st.integers(0, 9)):
        node["op"] = draw(st.one_of(st.sampled_from(OPS), scalars))
    if draw(st.integers(0, 9)):
        node["value"] = draw(values)
    if not draw(st.integers(0, 3)):
        node["within_days"] = draw(st.one_of(st.integers(-5, 10**12), scalars))
    if not draw(st.integers(0, 15)):
        node[draw(st.sampled_from(["extra", "all", "1"]))] = draw(values)
    return node


def groups(children):
    return st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, max_size=4)),
        st.builds(lambda items: {"any": items}, st.lists(children, max_size=4)),
        st.builds(lambda item: {"not": item}, children),
        st.builds(lambda item: {"all": item}, children),  # an object where a list belongs
        st.lists(children, max_size=3),  # a list where an object belongs
    )


rules = st.recursive(st.one_of(leaves(), scalars), groups, max_leaves=12)


def deep(depth: int) -> dict:
    node: dict = {"field": "age", "op": ">", "value": 1}
    for level in range(depth):
        node = {("all", "any", "not")[level % 3]: node if level % 3 == 2 else [node]}
    return node


@pytest.fixture
def editor(client, segment_marketer, brand, tmall, marketing):
    grant(shopper(tmall, city="上海", orders=2), marketing)
    client.force_login(segment_marketer)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _post_everywhere(editor, brand, marketing, payload, counter=[0]) -> list[int]:  # noqa: B006 - a slug counter
    counter[0] += 1
    text = json.dumps(payload) if not isinstance(payload, str) else payload
    count = editor.post(
        reverse("admin:segments_segment_count"), {"purpose": marketing.pk, "channel": "sms", "rules": text}
    )
    form = {"brand": brand.pk, "name": "Fuzz", "slug": f"fuzz-{counter[0]}", "description": "",
            "purpose": marketing.pk, "channel": "sms", "rules": text, "limit": "", "schedule": ""}  # fmt: skip
    add = editor.post(reverse("admin:segments_segment_add"), form)
    return [count.status_code, add.status_code]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=rules)
def test_generated_rules_never_make_a_server_error(editor, brand, marketing, payload):
    statuses = _post_everywhere(editor, brand, marketing, payload)
    assert all(code < 500 for code in statuses), (payload, statuses)


@pytest.mark.parametrize(
    "payload",
    [
        deep(9),
        deep(60),
        {"all": []},
        {"any": []},
        {"all": {}},
        [{"field": "city", "op": "=", "value": "上海"}],
        {"field": 7, "op": "=", "value": 1},
        {"field": "points", "op": ">", "value": 2**31},
        {"field": "points", "op": ">", "value": 10**30},
        {"field": "total_spent", "op": ">", "value": "1e999999"},
        {"field": "total_spent", "op": ">", "value": "1e-999999"},
        {"field": "orders", "op": ">=", "value": 10**20, "within_days": 30},
        {"field": "age", "op": ">=", "value": 10**6},
        {"field": "age", "op": "between", "value": [-(10**6), 10**6]},
        {"field": "birth_month", "op": "=", "value": 10**20},
        {"field": "last_order_days", "op": "<", "value": 10**9},
        {"field": "joined", "op": "within_last_days", "value": 10**9},
        {"field": "member_since", "op": "<=", "value": "9999-12-31"},
        {"field": "joined", "op": ">", "value": "0001-01-01"},
        {"field": "city", "op": "=", "value": "上\x00海"},
        {"field": "category", "op": "in", "value": ["a\x00"]},
        "NaN",
    ],
)
def test_known_bad_rules_are_refused_not_crashed(editor, brand, marketing, payload):
    statuses = _post_everywhere(editor, brand, marketing, payload)
    assert all(code < 500 for code in statuses), statuses

"""Bad input never gets a 500: whatever a caller sends (bodies nested a hundred thousand
deep, NUL and lone surrogates, numbers too large, crafted cursors, query strings with NUL,
quiet hours in another format), the answer is a 4xx problem naming the field."""

from __future__ import annotations

import base64
import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from consent.models import Preference
from members.models import Member

from ..segments.conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def post_raw(api, url: str, body: str, method: str = "POST"):
    return api.generic(method, url, body.encode("utf-8"), content_type="application/json")


def assert_problem(response, status: int = 400, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    if field is not None:
        assert field in [error["field"] for error in body.get("errors", [])], body
    return body


# --- Bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/members/", "/api/v1/consent-events/", "/api/v1/orders/"])
def test_a_body_nested_too_deep_is_400(api, tmall, url):
    response = post_raw(api, url, "[" * 100_000 + "]" * 100_000)

    assert "nests deeper than" in assert_problem(response)["detail"]


def test_nesting_is_limited_below_the_recursion_limit_too(api, tmall):
    attributes = "1"
    for _ in range(40):
        attributes = '{"a": ' + attributes + "}"
    response = post_raw(
        api, "/api/v1/members/", f'{{"store": "lotus-tmall", "member_id": "D1", "attributes": {attributes}}}'
    )

    assert_problem(response)
    assert not Member.objects.exists()


def test_a_few_levels_of_attributes_are_fine(api, tmall):
    attributes = {"size": {"top": {"eu": [38, 40]}}}
    response = api.post("/api/v1/members/", {"store": "lotus-tmall", "member_id": "D2", "attributes": attributes})

    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"note": "a\u0000b"}, "attributes/note"),
        ({"list": ["ok", "\u0000"]}, "attributes/list/1"),
        ({"lone": "\ud800"}, "attributes/lone"),
    ],
)
def test_nul_and_lone_surrogates_in_attributes_are_400_naming_the_field(api, tmall, attributes, field):
    body = json.dumps({"store": "lotus-tmall", "member_id": "N1", "attributes": attributes})

    assert_problem(post_raw(api, "/api/v1/members/", body), field=field)
    assert not Member.objects.exists()


def test_a_nul_in_a_key_is_400(api, tmall):
    body = json.dumps({"store": "lotus-tmall", "member_id": "N1", "attributes": {"no\u0000te": "x"}})

    errors = assert_problem(post_raw(api, "/api/v1/members/", body))["errors"]
    assert errors[0]["field"] == "attributes/no\\u0000te"


def test_a_nul_in_a_name_is_400_naming_it(api, tmall):
    response = api.post("/api/v1/members/", {"store": "lotus-tmall", "member_id": "N1", "name": "张\u0000三"})

    assert_problem(response, field="name")


def test_a_number_too_large_for_a_float_is_400(api, tmall):
    response = post_raw(
        api, "/api/v1/members/", '{"store": "lotus-tmall", "member_id": "B1", "attributes": {"x": 1e999}}'
    )

    assert_problem(response, field="attributes/x")


def test_points_beyond_the_column_are_400_naming_points(api, tmall):
    response = api.post("/api/v1/members/", {"store": "lotus-tmall", "member_id": "P1", "points": 2**31})

    assert_problem(response, field="points")


# --- Query strings ---------------------------------------------------------------------------


def test_a_nul_in_a_query_parameter_is_400_naming_it(api, tmall):
    assert_problem(api.get("/api/v1/members/", {"phone": "138\x00"}), field="phone")
    assert_problem(api.get("/api/v1/members/", {"email": "a@b.c", "x\x00": "1"}), field="x\\u0000")


# --- Cursors ---------------------------------------------------------------------------------


@pytest.fixture
def built_segment(brand, tmall, marketing):
    segment = make_segment(brand, marketing, {"all": []}, slug="everyone")
    for _ in range(3):
        grant(shopper(tmall), marketing, "sms")
    build(segment)
    return segment


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("p=abc"),
        _cursor("p=99999999999999999999999"),
        _cursor("p=%00"),
        _cursor("p=1.5"),
        _cursor("o=5&p=-"),
        _cursor("r=x"),
        "not base64!",
        "☃",
    ],
)
def test_a_crafted_cursor_is_400_naming_the_cursor(api, built_segment, cursor):
    response = api.get("/api/v1/segments/everyone/members/", {"cursor": cursor})

    assert_problem(response, field="cursor")


def test_a_cursor_we_gave_out_still_works(api, built_segment):
    first = api.get("/api/v1/segments/everyone/members/", {"page_size": 2}).json()
    second = api.get(first["next"])

    assert second.status_code == 200 and len(second.json()["results"]) == 1


# --- quiet_start: one type in the schema, the input and the output -----------------------------


@pytest.mark.parametrize("component", ["PreferenceRequest", "PreferenceOutput"])
def test_quiet_start_schema_is_the_local_time_the_code_takes(component):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"][component]["properties"]["quiet_start"]

    assert field["type"] == "string" and "format" not in field and field["nullable"] is True
    assert field["pattern"] == r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@pytest.mark.parametrize("value", ["22:00:00+08:00", "22:00:00Z", "2200", "22:00:00.5", "24:00", 2200, True, []])
def test_quiet_start_outside_the_schema_is_400_naming_it(api, alice, value):
    response = api.put(f"/api/v1/members/{alice.pk}/preferences/", {"quiet_start": value}, format="json")

    assert_problem(response, field="quiet_start")
    assert not Preference.objects.exists()


@pytest.mark.parametrize(("value", "answer"), [("22:00", "22:00:00"), ("07:30:15", "07:30:15"), (None, None)])
def test_quiet_start_in_the_schema_is_taken_and_answered_in_it(api, alice, value, answer):
    response = api.put(
        f"/api/v1/members/{alice.pk}/preferences/", {"quiet_start": value, "quiet_end": "07:00"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["quiet_start"] == answer
    assert api.get(f"/api/v1/members/{alice.pk}/preferences/").json()["quiet_start"] == answer

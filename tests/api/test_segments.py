"""Segments over the API: list, build (202 + URL), members with consent re-checked at
read time, cursor pages, DataUsage per person returned."""

from __future__ import annotations

import pytest

from consent.models import DataUsage
from segments.models import SegmentBuild
from tests.segments.conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(brand, marketing):
    return make_segment(brand, marketing, {"all": [{"field": "city", "op": "=", "value": "上海"}]}, slug="shanghai")


@pytest.fixture
def built(segment, tmall, marketing):
    people = [shopper(tmall) for _ in range(5)]
    for person in people:
        grant(person, marketing, "sms")
    build(segment)
    segment.refresh_from_db()
    return people


def test_list_shows_the_brands_segments_with_their_build(api, segment, built, django_assert_max_num_queries):
    api.get("/api/v1/segments/")
    with django_assert_max_num_queries(2):
        response = api.get("/api/v1/segments/")
    [item] = response.json()["results"]
    assert item["slug"] == "shanghai" and item["purpose"] == "marketing" and item["channel"] == "sms"
    assert item["current_build"]["final"] == 5


def test_build_request_is_202_with_url(api, segment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/segments/shanghai/builds/")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["url"]
    # Tests run tasks in-process: the build finished before the answer.
    polled = api.get(body["url"])
    assert polled.status_code == 200 and polled.json()["status"] == "succeeded"
    assert SegmentBuild.objects.count() == 1


def test_members_recheck_consent_and_log_usage(api, api_key, segment, built, marketing, django_assert_max_num_queries):
    grant(built[0], marketing, "sms", action="withdrawn")
    api.get("/api/v1/segments/")
    with django_assert_max_num_queries(4):
        first = api.get("/api/v1/segments/shanghai/members/", {"page_size": 3})
    assert first.status_code == 200, first.json()
    page1 = first.json()
    assert len(page1["results"]) == 3 and page1["channel"] == "sms"
    assert built[0].pk not in [r["id"] for r in page1["results"]]
    assert page1["results"][0]["contact"].startswith("+86")
    page2 = api.get(page1["next"]).json()
    assert page2["next"] is None
    ids = [r["id"] for r in page1["results"] + page2["results"]]
    assert sorted(ids) == sorted(p.pk for p in built[1:])
    usage = DataUsage.objects.filter(context_type="api_segment_read")
    assert sorted(usage.values_list("member_id", flat=True)) == sorted(ids)
    assert all(api_key.prefix in ref for ref in usage.values_list("context_ref", flat=True))


def test_members_on_a_channel_without_consent_is_empty(api, segment, built):
    response = api.get("/api/v1/segments/shanghai/members/", {"channel": "email"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert api.get("/api/v1/segments/shanghai/members/", {"channel": "post"}).status_code == 400
    assert api.get("/api/v1/segments/shanghai/members/", {"cursor": "garbage"}).status_code == 400


def test_unbuilt_segment_members_is_409_and_unknown_is_404(api, segment):
    assert api.get("/api/v1/segments/shanghai/members/").status_code == 409
    assert api.get("/api/v1/segments/nope/members/").status_code == 404
    assert api.post("/api/v1/segments/nope/builds/").status_code == 404

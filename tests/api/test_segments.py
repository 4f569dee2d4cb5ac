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
    # The key, the segment, the page, the usage insert; the brand's memberships and orders
    # of the page's people (the brand wall's view).
    with django_assert_max_num_queries(6):
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


def test_members_read_obeys_preferences_changed_after_the_build(api, brand, segment, built):
    """The build let all five through; since then one person paused messages, one chose
    e-mail only: the read leaves both out, as ``can_contact`` would."""
    from consent import services as consent_services

    consent_services.update_preferences(member=built[0], brand=brand, source_type="privacy_center", max_per_week=0)
    consent_services.update_preferences(member=built[1], brand=brand, source_type="privacy_center", channels=["email"])
    ids = [r["id"] for r in api.get("/api/v1/segments/shanghai/members/").json()["results"]]
    assert sorted(ids) == sorted(p.pk for p in built[2:])
    assert not DataUsage.objects.filter(member_id__in=[built[0].pk, built[1].pk]).exists()


def test_members_on_a_channel_without_consent_is_empty(api, segment, built):
    response = api.get("/api/v1/segments/shanghai/members/", {"channel": "email"})
    assert response.status_code == 200 and response.json()["results"] == []
    assert api.get("/api/v1/segments/shanghai/members/", {"channel": "post"}).status_code == 400
    assert api.get("/api/v1/segments/shanghai/members/", {"cursor": "garbage"}).status_code == 400


def test_unbuilt_segment_members_is_409_and_unknown_is_404(api, segment):
    assert api.get("/api/v1/segments/shanghai/members/").status_code == 409
    assert api.get("/api/v1/segments/nope/members/").status_code == 404
    assert api.post("/api/v1/segments/nope/builds/").status_code == 404

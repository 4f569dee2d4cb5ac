"""Times in the person's zone (privacy/timezones.py): the pages say which zone they show,
the browser's or the person's choice is followed, and the data copy writes its times in
that zone with their offsets. The admin keeps the site's zone."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.test import RequestFactory
from django.utils import timezone

from consent import services
from consent.models import Action, SourceType
from privacy import timezones

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

# 2026-11-03 02:30 UTC: 10:30 in Shanghai, 05:30 in Moscow.
WHEN = dt.datetime(2026, 11, 3, 2, 30, tzinfo=dt.UTC)


@pytest.fixture
def dated(shopper, purposes, tmall):
    """A choice the shopper made at a known instant (a store's record of a past choice)."""
    return services.record_consent(
        member=shopper, brand=tmall.brand, purpose=purposes["marketing"], channel="email", action=Action.GRANTED,
        source_type=SourceType.STORE, store=tmall, occurred_at=WHEN,
    )  # fmt: skip


def test_without_a_choice_pages_show_the_sites_zone_and_say_so(signed_in, dated):
    page = signed_in.get("/privacy/history/").content.decode()
    assert 'datetime="2026-11-03T10:30:00+08:00"' in page  # the history's entry, headed by its day
    assert "Asia/Shanghai" in page and "UTC+08:00" in page


def test_the_browsers_zone_is_used_and_named(signed_in, dated):
    signed_in.cookies["tz"] = "Europe/Moscow"
    page = signed_in.get("/privacy/history/").content.decode()
    assert 'datetime="2026-11-03T05:30:00+03:00"' in page and "T10:30:00+08:00" not in page
    assert 'data-tz="Europe/Moscow"' in page and "UTC+03:00" in page
    assert "本页面的时间为莫斯科时间（UTC+03:00）" in page  # the city in the page's language (CLDR)
    russian = signed_in.get("/privacy/history/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Москва (UTC+03:00)" in russian


def test_an_unknown_zone_in_the_cookie_is_ignored(signed_in, dated):
    signed_in.cookies["tz"] = "Mars/Olympus_Mons"
    assert 'datetime="2026-11-03T10:30:00+08:00"' in signed_in.get("/privacy/history/").content.decode()


def test_picking_a_zone_sets_it_and_goes_back(client, dated):
    response = client.post("/privacy/time-zone/", {"time_zone": "Asia/Vladivostok", "next": "/privacy/history/"})
    assert response.status_code == 302 and response["Location"] == "/privacy/history/"
    assert response.cookies["tz"].value == "Asia/Vladivostok"
    assert response.cookies["tz"]["samesite"] == "Lax"

    away = client.post("/privacy/time-zone/", {"time_zone": "UTC", "next": "https://evil.example/"})
    assert away["Location"] == "/privacy/"  # never off the site

    bad = client.post("/privacy/time-zone/", {"time_zone": "Asia/Atlantis"})
    assert bad.status_code == 400 and "tz" not in bad.cookies
    assert client.get("/privacy/time-zone/").status_code == 405


def test_the_time_zone_form_needs_its_csrf_token(dated):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/privacy/time-zone/", {"time_zone": "UTC"}).status_code == 403


def test_the_data_copy_writes_times_in_the_persons_zone_and_says_which(signed_in, dated):
    signed_in.cookies["tz"] = "Europe/Moscow"
    download = signed_in.get(signed_in.post("/privacy/data/export/")["Location"])
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    data = json.loads(archive.read("data.json"))
    assert data["time_zone"] == "Europe/Moscow"
    assert data["generated_at"].endswith("+03:00")
    assert "2026-11-03T05:30:00+03:00" in {event["occurred_at"] for event in data["consent_events"]}
    assert "2026-11-03T05:30:00+03:00" in archive.read("consent_events.csv").decode("utf-8-sig")
    readme = archive.read("README.txt").decode()
    assert "Europe/Moscow time (UTC+03:00)" in readme and "Europe/Moscow 时间（UTC+03:00）" in readme


def test_only_privacy_center_pages_take_the_persons_zone():
    seen = {}

    def view(request):
        seen[request.path] = timezone.get_current_timezone_name()
        return "page"

    middleware = timezones.PersonTimeZoneMiddleware(view)
    for path in ["/privacy/history/", "/admin/members/member/"]:
        request = RequestFactory().get(path)
        request.COOKIES["tz"] = "Europe/Moscow"
        middleware(request)
    assert seen == {"/privacy/history/": "Europe/Moscow", "/admin/members/member/": "Asia/Shanghai"}
    assert timezone.get_current_timezone_name() == "Asia/Shanghai"  # nothing left active


def test_offsets_follow_the_date():
    summer, winter = dt.datetime(2026, 7, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert timezones.offset_label("Europe/London", summer) == "UTC+01:00"
    assert timezones.offset_label("Europe/London", winter) == "UTC+00:00"
    assert timezones.offset_label("America/New_York", winter) == "UTC-05:00"
    assert timezones.offset_label("Asia/Kolkata", winter) == "UTC+05:30"

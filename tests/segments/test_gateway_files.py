"""A campaign send gives two files: the gateway file for the sending system (phones as
E.164 or 11 digits with nothing prepended; e-mail rows with the one-click unsubscribe link
and List-Unsubscribe values) and the Excel-safe sheet for people."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from consent.models import DataUsage
from segments.models import SegmentExport

from .conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db

EVERYONE = {"all": []}


@pytest.fixture
def marketer_client(client, segment_marketer):
    client.force_login(segment_marketer)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _send(client, segment, campaign="双12 预热"):
    done = build(segment)
    client.post(reverse("admin:segments_segmentbuild_export", args=[done.pk]), {"kind": "send", "campaign": campaign})
    return SegmentExport.objects.latest("pk")


def _rows(response) -> list[list[str]]:
    raw = b"".join(response.streaming_content)
    assert not raw.startswith(b"\xef\xbb\xbf")  # no byte-order mark for gateways
    return list(csv.reader(io.StringIO(raw.decode("utf-8"))))


def test_an_sms_gateway_file_lists_numbers_with_nothing_prepended(marketer_client, brand, tmall, marketing):
    for phone in ("+8613800138000", "+79123456789"):
        grant(shopper(tmall, phone=phone), marketing)
    export = _send(marketer_client, make_segment(brand, marketing, EVERYONE, slug="sms-all"))
    url = reverse("admin:segments_segmentexport_gateway", args=[export.pk])

    e164 = marketer_client.get(url)
    national = marketer_client.get(url, {"phones": "national"})

    assert e164.status_code == national.status_code == 200
    assert sorted(_rows(e164)) == [["+79123456789"], ["+8613800138000"], ["mobile"]]
    # Mainland numbers as the 11 digits gateways take; a foreign one keeps its country code.
    assert sorted(_rows(national)) == [["+79123456789"], ["13800138000"], ["mobile"]]
    assert "gateway file" in e164["Content-Disposition"]
    assert marketer_client.get(url, {"phones": "x"}).status_code == 400
    # The person sees the campaign's name in their privacy center's usage log.
    assert set(DataUsage.objects.values_list("campaign", flat=True)) == {"双12 预热"}


def test_an_email_gateway_file_carries_each_persons_one_click_unsubscribe(marketer_client, brand, tmall, marketing):
    member = shopper(tmall, email="li.na@example.com")
    grant(member, marketing, channel="email", action="confirmed",
          confirmation={"confirmed_at": "2026-11-01T10:00:00+08:00", "ip": "203.0.113.7", "message_id": "<m@x>"})  # fmt: skip
    export = _send(marketer_client, make_segment(brand, marketing, EVERYONE, channel="email", slug="mail-all"))

    header, row = _rows(marketer_client.get(reverse("admin:segments_segmentexport_gateway", args=[export.pk])))

    assert header == ["email", "unsubscribe_url", "list_unsubscribe", "list_unsubscribe_post"]
    assert row[0] == "li.na@example.com" and row[2] == f"<{row[1]}>" and row[3] == "List-Unsubscribe=One-Click"
    # The link works without signing in: one click (RFC 8058) withdraws the e-mail consent.
    path = row[1].split("://", 1)[-1].split("/", 1)[1]
    answer = Client().post("/" + path, {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    from consent.models import ConsentState

    assert ConsentState.objects.get(member=member, purpose=marketing, channel="email").action == "withdrawn"


def test_a_file_for_review_has_a_sheet_but_no_gateway_file(marketer_client, brand, tmall, marketing):
    grant(shopper(tmall, phone="+8613800138001"), marketing)
    done = build(make_segment(brand, marketing, EVERYONE, slug="review"))
    marketer_client.post(reverse("admin:segments_segmentbuild_export", args=[done.pk]), {"kind": "download"})
    export = SegmentExport.objects.get()

    page = marketer_client.get(reverse("admin:segments_segmentbuild_change", args=[done.pk])).content.decode()

    assert "Sheet (Excel)" in page and "Gateway file" not in page
    assert marketer_client.get(reverse("admin:segments_segmentexport_gateway", args=[export.pk])).status_code == 404
    sheet = marketer_client.get(reverse("admin:segments_segmentexport_csv", args=[export.pk]))
    assert b"".join(sheet.streaming_content).decode("utf-8-sig").count("'+86") == 1  # the sheet keeps its guard


def test_the_gateway_file_needs_the_export_permission(client, marketer, brand, tmall, marketing, segment_marketer):
    grant(shopper(tmall), marketing)
    segment = make_segment(brand, marketing, EVERYONE, slug="perm")
    seller = Client()
    seller.force_login(segment_marketer)
    export = _send(seller, segment)
    client.force_login(marketer)
    assert client.get(reverse("admin:segments_segmentexport_gateway", args=[export.pk])).status_code == 403

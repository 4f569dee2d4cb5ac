"""The segment admin as a marketer uses it: list, editor, live count, build, export."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from cdp.models import AuditLog
from consent.models import DataUsage
from segments.models import Segment, SegmentBuild, SegmentExport

from .conftest import build, grant, make_segment, shopper

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


@pytest.fixture
def segment(brand, tmall, marketing):
    for name in ("=cmd|' /C calc'!A0", "李娜", "王芳"):
        grant(shopper(tmall, name=name), marketing)
    return make_segment(brand, marketing, SHANGHAI, slug="shanghai-sms")


@pytest.fixture
def marketer_client(client, segment_marketer):
    client.force_login(segment_marketer)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_list_shows_last_funnel_with_flat_queries(
    marketer_client, brand, marketing, segment, django_assert_max_num_queries
):
    build(segment)
    for index in range(5):
        build(make_segment(brand, marketing, SHANGHAI, slug=f"more-{index}"))

    with django_assert_max_num_queries(8):
        response = marketer_client.get(reverse("admin:segments_segment_changelist"))

    assert response.status_code == 200
    assert "3 → 3 → 3 → 3 → 3" in strip_tags(response.content.decode())


def test_change_page_shows_history_reference_and_build_button(marketer_client, segment, django_assert_max_num_queries):
    for _ in range(3):
        build(segment)

    with django_assert_max_num_queries(14):
        response = marketer_client.get(reverse("admin:segments_segment_change", args=[segment.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('href="/admin/segments/segmentbuild/') >= 3
    assert "within_days" in page and "lifecycle_stage" in page  # the field reference
    assert 'form="build-now-form"' in page


def _form(segment: Segment, **changes) -> dict:
    data = {
        "brand": segment.brand_id, "name": segment.name, "slug": segment.slug, "description": "",
        "purpose": segment.purpose_id, "channel": segment.channel, "rules": json.dumps(segment.rules),
        "limit": "", "schedule": "",
    }  # fmt: skip
    data.update(changes)
    return data


def test_editor_names_the_bad_field_and_saves_nothing(marketer_client, segment):
    bad = {"all": [{"field": "city", "op": "=", "value": "上海"}, {"field": "agee", "op": ">", "value": 3}]}
    url = reverse("admin:segments_segment_change", args=[segment.pk])

    response = marketer_client.post(url, _form(segment, rules=json.dumps(bad)))

    assert response.status_code == 200
    assert "all[1].field: unknown field &#x27;agee&#x27;" in response.content.decode()
    segment.refresh_from_db()
    assert segment.rules == SHANGHAI


def test_editor_rejects_broken_json(marketer_client, segment):
    response = marketer_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]), _form(segment, rules="{")
    )

    assert response.status_code == 200
    assert "Enter a valid JSON" in response.content.decode()


def test_editor_saves_through_the_service_with_an_audit_row(marketer_client, segment):
    rules = {"all": [{"field": "age", "op": "between", "value": [25, 40]}]}

    response = marketer_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]), _form(segment, rules=json.dumps(rules))
    )

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.rules == rules
    assert AuditLog.objects.filter(action="segment.changed", object_id=str(segment.pk)).exists()


def test_live_count_returns_the_funnel_without_saving(marketer_client, segment):
    response = marketer_client.post(
        reverse("admin:segments_segment_count"),
        {"purpose": segment.purpose_id, "channel": "sms", "rules": json.dumps(SHANGHAI)},
    )

    assert response.status_code == 200
    assert response.json()["counts"] == {"matched": 3, "consented": 3, "under_cap": 3, "reachable": 3}
    assert not SegmentBuild.objects.exists()


def test_live_count_explains_bad_rules(marketer_client, segment):
    response = marketer_client.post(
        reverse("admin:segments_segment_count"),
        {"purpose": segment.purpose_id, "channel": "sms", "rules": json.dumps({"field": "city", "op": "~"})},
    )

    assert response.status_code == 400
    assert any("unknown operator '~' for city" in message for message in response.json()["errors"])


def test_build_now_runs_the_build(marketer_client, segment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("admin:segments_segment_build", args=[segment.pk]))

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.current_build.final == 3


def test_build_now_needs_the_permission(client, marketer, segment):
    client.force_login(marketer)

    response = client.post(reverse("admin:segments_segment_build", args=[segment.pk]))

    assert response.status_code == 403
    assert not SegmentBuild.objects.exists()


def test_export_then_download_csv_with_neutralised_formulas(marketer_client, segment):
    done = build(segment)

    response = marketer_client.post(
        reverse("admin:segments_segmentbuild_export", args=[done.pk]), {"kind": "send", "campaign": "双12"}
    )
    export = SegmentExport.objects.get()
    assert response.status_code == 302
    assert DataUsage.objects.filter(context_ref=export.context_ref).count() == 3

    download = marketer_client.get(reverse("admin:segments_segmentexport_csv", args=[export.pk]))
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert download.status_code == 200
    assert "'=cmd|' /C calc'!A0" in body
    assert body.splitlines()[0] == "member_id,name,contact,city,language,lifecycle_stage"
    assert AuditLog.objects.filter(action="segment.export_downloaded").exists()


def test_export_needs_the_permission_and_a_post(client, marketer, segment):
    done = build(segment)
    client.force_login(marketer)

    assert (
        client.post(reverse("admin:segments_segmentbuild_export", args=[done.pk]), {"kind": "send"}).status_code == 403
    )
    assert not SegmentExport.objects.exists()


def test_build_page_shows_the_export_form(marketer_client, segment):
    done = build(segment)

    response = marketer_client.get(reverse("admin:segments_segmentbuild_change", args=[done.pk]))

    assert response.status_code == 200
    assert reverse("admin:segments_segmentbuild_export", args=[done.pk]) in response.content.decode()


def test_unknown_export_is_404(marketer_client):
    assert marketer_client.get(reverse("admin:segments_segmentexport_csv", args=[999])).status_code == 404

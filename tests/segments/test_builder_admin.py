"""The segment builder's server side, as a marketer of one brand meets it (issue 25 item 4):
value pickers from the brand's own data only, translated field names, the brand's purposes
only, the slug made from the name, and "Build and export" giving the gateway file."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from consent.models import Purpose
from members.models import StoreMembership
from segments.models import Segment, SegmentBuild, SegmentExport
from tests.conftest import MEMBER_PERMS, _staff_with
from tests.factories import BrandFactory, MemberFactory, OrderFactory, StoreFactory, store_profile

from .conftest import SEGMENT_PERMS, grant, make_segment, segment_form, shopper

pytestmark = pytest.mark.django_db

SHANGHAI = {"all": [{"field": "city", "op": "in", "value": ["上海"]}]}


@pytest.fixture
def rose():
    """Another brand, with a city, a tier, a category and a purpose of its own."""
    other = BrandFactory(code="rose", name="玫瑰")
    store = StoreFactory(brand=other, code="rose-jd", name="玫瑰京东", platform="jd")
    member = MemberFactory(city="哈尔滨")
    StoreMembership.objects.create(member=member, store=store, store_member_id="R1", tier="rose-vip",
                                   **store_profile(member))  # fmt: skip
    OrderFactory(store=store, member=member, categories=["rose-only"])
    Purpose.objects.create(brand=other, code="rose_marketing", name="玫瑰营销", channels=["sms"])
    return other


@pytest.fixture
def lotus_marketer(client, brand):
    user = _staff_with("lotus-marketer", [*MEMBER_PERMS, *SEGMENT_PERMS, "view_purpose"], brands=[brand])
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


@pytest.fixture
def shoppers(tmall, jd, marketing):
    for city, tier in (("上海", "gold"), ("上海", "gold"), ("杭州", "silver")):
        member = shopper(tmall, city=city, orders=1)
        StoreMembership.objects.filter(member=member).update(tier=tier)
        grant(member, marketing)
    OrderFactory(store=jd, categories=["护肤", "彩妆"])
    return marketing


def _values(response) -> dict:
    return {name: [o["value"] for o in field["options"]] for name, field in response.json()["fields"].items()}


def test_pickers_offer_the_brands_own_values_only(
    client, brand, rose, shoppers, lotus_marketer, django_assert_max_num_queries
):
    with django_assert_max_num_queries(16):
        response = client.get(reverse("admin:segments_segment_values"), {"brand": brand.pk})

    assert response.status_code == 200
    values = _values(response)
    assert values["city"] == ["上海", "杭州"]  # the most frequent first
    assert values["tier"] == ["gold", "silver"]
    assert set(values["category"]) == {"护肤", "彩妆"}
    assert values["store"] == ["lotus-jd", "lotus-tmall"]
    assert values["platform"] == ["jd", "tmall"]
    assert values["older_notice"] == ["marketing"]  # purposes with a notice
    assert "at_risk" in values["lifecycle_stage"]
    stages = {o["value"]: o["label"] for o in response.json()["fields"]["lifecycle_stage"]["options"]}
    assert stages["at_risk"] == "At risk"  # translated names
    assert not {"哈尔滨", "rose-vip", "rose-only", "rose-jd", "rose_marketing"} & {
        v for found in values.values() for v in found
    }


def test_pickers_of_another_brand_are_a_404(client, rose, lotus_marketer):
    assert client.get(reverse("admin:segments_segment_values"), {"brand": rose.pk}).status_code == 404


def test_add_page_offers_translated_fields_and_the_staffs_brand_and_its_purposes(
    client, brand, rose, shoppers, lotus_marketer, django_assert_max_num_queries
):
    with django_assert_max_num_queries(20):
        response = client.get(reverse("admin:segments_segment_add"))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.initial["brand"] == brand.pk
    assert set(form.fields["purpose"].queryset.values_list("code", flat=True)) == {"marketing"}
    fields = {f["name"]: f for f in response.context["rule_fields_data"]}
    assert fields["city"]["label"] == "City" and fields["older_notice"]["group_label"] == "consent"
    assert {o["op"]: o["label"] for o in fields["last_order_days"]["ops"]}[">="] == "at least"
    purposes = response.context["segment_purposes_data"]
    assert [p["channels"] for p in purposes] == [["sms", "email", "wechat"]]
    page = response.content.decode()
    assert 'id="rule-builder"' in page and 'id="live-count"' in page and "/segment/values/" in page


def test_editing_a_segment_offers_only_its_brands_purposes_to_group_staff(client, brand, rose, shoppers, superuser):
    segment = make_segment(brand, shoppers, SHANGHAI)
    client.force_login(superuser)

    response = client.get(reverse("admin:segments_segment_change", args=[segment.pk]))

    purposes = response.context["adminform"].form.fields["purpose"].queryset
    assert set(purposes.values_list("code", flat=True)) == {"marketing"}


def _add_form(brand, purpose, **changes):
    return segment_form(brand, purpose, SHANGHAI, **({"name": "上海 复购"} | changes))


def test_slug_is_made_from_the_name_in_pinyin_and_kept_free(client, brand, shoppers, lotus_marketer):
    url = reverse("admin:segments_segment_add")

    assert client.post(url, _add_form(brand, shoppers)).status_code == 302
    assert client.post(url, _add_form(brand, shoppers)).status_code == 302
    assert client.post(url, _add_form(brand, shoppers, name="Spring sale", slug="")).status_code == 302
    assert client.post(url, _add_form(brand, shoppers, name="Own", slug="my-own")).status_code == 302

    slugs = sorted(Segment.objects.values_list("slug", flat=True))
    assert slugs == ["my-own", "shang-hai-fu-gou", "shang-hai-fu-gou-2", "spring-sale"]


def test_build_and_export_waits_for_the_worker_then_gives_the_file_once(
    client, brand, shoppers, lotus_marketer, django_capture_on_commit_callbacks
):
    segment = make_segment(brand, shoppers, SHANGHAI)
    started = client.post(reverse("admin:segments_segment_build_export", args=[segment.pk]), {"campaign": "双12"})
    assert started.status_code == 302
    build = SegmentBuild.objects.get()
    wait = reverse("admin:segments_segment_build_export_wait", args=[segment.pk, build.pk])
    assert started.url.startswith(wait)

    queued = client.get(started.url).content.decode()
    assert 'data-build-status="queued"' in queued and 'http-equiv="refresh"' in queued
    assert client.post(wait, {"campaign": "双12"}).status_code == 302  # not built yet: nothing exported
    assert not SegmentExport.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):  # the worker's part
        from segments import services

        services.run_build(build.pk)
    done = client.get(started.url).content.decode()
    assert "data-auto-submit" in done and 'http-equiv="refresh"' not in done

    download = client.post(wait, {"campaign": "双12", "phones": "e164"})
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8"))))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    assert rows[0] == ["mobile"] and len(rows) == 3
    assert all(row[0].startswith("+86") for row in rows[1:])
    assert SegmentExport.objects.get().campaign == "双12"
    again = client.get(started.url).content.decode()
    assert "data-auto-submit" not in again  # exported once: coming back does not export again


def test_build_and_export_needs_both_permissions(client, brand, shoppers):
    segment = make_segment(brand, shoppers, SHANGHAI)
    perms = [p for p in SEGMENT_PERMS if p != "export_segment"]
    client.force_login(_staff_with("no-export", [*MEMBER_PERMS, *perms], brands=[brand]))

    assert client.post(reverse("admin:segments_segment_build_export", args=[segment.pk])).status_code == 403
    assert not SegmentBuild.objects.exists()
    assert (
        'id="build-export"'
        not in client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    )


def test_build_and_export_of_another_brands_segment_is_a_404(client, brand, rose, shoppers):
    segment = make_segment(brand, shoppers, SHANGHAI)
    client.force_login(_staff_with("rose-marketer", [*MEMBER_PERMS, *SEGMENT_PERMS], brands=[rose]))

    assert client.post(reverse("admin:segments_segment_build_export", args=[segment.pk])).status_code == 404
    assert not SegmentBuild.objects.exists()

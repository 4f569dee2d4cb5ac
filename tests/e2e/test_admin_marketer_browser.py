"""A marketer of brand A in Chromium (issue 25 item 4): sees only brand A's segments,
builds a segment with the visual rows (values picked from brand A's own data, JSON as the
advanced view kept in sync both ways), sees the live consent funnel before saving, saves
(the slug made from the Chinese name), and gets the gateway file with "Build and export"
in one step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission

from consent import services as consent_services
from consent.models import Notice, Purpose
from members.models import StoreMembership
from segments.models import Segment, SegmentExport
from tests.factories import BrandFactory, MemberFactory, StoreFactory, UserFactory, store_profile
from tests.segments.conftest import SEGMENT_PERMS, grant, make_segment, shopper

from .conftest import ARTIFACTS, admin_login, check_accessibility, docs_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_brands(brand, tmall, jd):
    """Brand A (lotus): shoppers in 上海/杭州/北京 at its Tmall store, one in 杭州 at JD, one
    without consent. Brand B (rose): a segment and a shopper in 哈尔滨 of its own."""
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销信息", channels=["sms"])
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销", body="v1"
    )
    phones = []
    for index, (store, city, consent) in enumerate(
        [(tmall, "上海", True), (tmall, "上海", True), (tmall, "杭州", True), (tmall, "上海", False),
         (tmall, "北京", True), (jd, "杭州", True)]
    ):  # fmt: skip
        member = shopper(store, city=city, phone=f"+8613900{index:06d}")
        if consent:
            grant(member, purpose)
        phones.append(member.phone)
    make_segment(brand, purpose, {"all": [{"field": "city", "op": "=", "value": "北京"}]}, slug="beijing")
    rose = BrandFactory(code="rose", name="玫瑰")
    rose_store = StoreFactory(brand=rose, code="rose-jd", name="玫瑰京东", platform="jd")
    stranger = MemberFactory(city="哈尔滨")
    StoreMembership.objects.create(member=stranger, store=rose_store, store_member_id="R1", **store_profile(stranger))
    rose_purpose = Purpose.objects.create(brand=rose, code="marketing", name="玫瑰营销", channels=["sms"])
    make_segment(rose, rose_purpose, {"all": [{"field": "city", "op": "=", "value": "哈尔滨"}]}, slug="rose-secret")

    user = UserFactory(username="lotus-marketer", is_staff=True)
    codenames = [*SEGMENT_PERMS, "view_purpose", "view_brand", "view_store"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    brand.staff.add(user)
    return purpose, phones


def _rules(page) -> dict:
    return json.loads(page.input_value("#id_rules"))


def test_marketer_builds_a_segment_visually_and_gets_the_gateway_file(page, live_server, brand, two_brands):
    purpose, phones = two_brands
    admin_login(page, live_server, "lotus-marketer", "/admin/segments/segment/")

    # The list: brand A's segments only.
    page.wait_for_selector("#result_list")
    listed = page.inner_text("#result_list")
    assert "Beijing" in listed and "Rose-Secret" not in listed

    page.goto(f"{live_server.url}/admin/segments/segment/add/")
    builder = page.locator("#rule-builder")
    # Brand A is the only brand: chosen already, and the pickers hold its own values.
    page.wait_for_selector(f"#rule-builder[data-values-brand='{brand.pk}']")
    assert page.input_value("#id_brand") == str(brand.pk)
    assert page.locator("#id_rules").is_hidden()  # the JSON is the advanced view
    page.fill("#id_name", "上海杭州 天猫短信")
    page.select_option("#id_purpose", str(purpose.pk))
    assert page.input_value("#id_channel") == "sms"  # the purpose's only channel

    builder.locator("[data-add]").click()
    row = builder.locator(".rule-row").nth(0)
    row.locator("[data-rule-field]").select_option("city")
    row.locator("[data-rule-op]").select_option("in")
    cities = {text.strip() for text in row.locator("fieldset.rule-picks label").all_inner_texts()}
    assert cities == {"上海", "杭州", "北京"}  # brand A's cities, never brand B's 哈尔滨
    row.get_by_label("上海").check()
    row.get_by_label("杭州").check()

    builder.locator("[data-add]").click()
    row = builder.locator(".rule-row").nth(1)
    row.locator("[data-rule-field]").select_option("store")
    row.locator("[data-rule-op]").select_option("in")
    row.get_by_label("莲花天猫旗舰店 (lotus-tmall)").check()
    assert _rules(page) == {
        "all": [
            {"field": "city", "op": "in", "value": ["上海", "杭州"]},
            {"field": "store", "op": "in", "value": ["lotus-tmall"]},
        ]
    }

    # The live count shows the consent funnel before anything is saved.
    page.wait_for_selector("#live-count-table:not([hidden])")
    page.wait_for_function("() => document.querySelector(\"[data-step='matched']\").textContent === '4'")
    assert page.inner_text("[data-step='consented']") == "3"
    assert page.inner_text("[data-drop='consented']") == "−1"
    assert page.inner_text("[data-step='reachable']") == "3"

    # The JSON, opened as the advanced view, and the rows follow each other both ways.
    builder.locator("[data-toggle-json]").click()
    assert page.locator("#id_rules").is_visible()
    page.fill("#id_rules", json.dumps({"any": [{"field": "city", "op": "in", "value": ["上海"]},
                                               {"field": "store", "op": "in", "value": ["lotus-tmall"]}]}))  # fmt: skip
    page.wait_for_function("() => document.querySelector('#rule-builder [data-joiner]').value === 'any'")
    assert not builder.locator(".rule-row").nth(0).get_by_label("杭州").is_checked()
    builder.locator("[data-joiner]").select_option("all")
    builder.locator(".rule-row").nth(0).get_by_label("杭州").check()
    assert _rules(page)["all"][0]["value"] == ["上海", "杭州"]
    builder.locator("[data-toggle-json]").click()

    check_accessibility(page, "segment builder")
    page.locator("#rule-builder h2").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, document.querySelector('#rule-builder').getBoundingClientRect().top - 10)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-segment-builder.png"), full_page=True)
    docs_screenshot(page, "admin-segment-builder")

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist, .errornote")
    assert not page.locator(".errornote").count(), page.inner_text("#content")
    segment = Segment.objects.get(brand=brand, name="上海杭州 天猫短信")
    assert segment.slug == "shang-hai-hang-zhou-tian-mao-duan-xin"  # made from the name
    assert segment.rules["all"][1] == {"field": "store", "op": "in", "value": ["lotus-tmall"]}

    page.screenshot(path=str(ARTIFACTS / "admin-segment-saved.png"), full_page=True)

    # "Build and export": one click, the gateway file.
    page.fill("#id_be_campaign", "双12 预热")
    page.select_option("#id_be_phones", "national")
    with page.expect_download() as download:
        page.click("#build-export-button")
    raw = Path(download.value.path()).read_bytes()
    lines = raw.decode("utf-8").splitlines()
    assert lines[0] == "mobile"  # no byte-order mark, nothing before the header
    export = SegmentExport.objects.get()
    assert (export.campaign, export.exported) == ("双12 预热", 3)
    expected = sorted(phone.removeprefix("+86") for phone in phones[:3])  # 11 digits: no ', no +86
    assert sorted(lines[1:]) == expected


def test_without_javascript_the_json_is_the_editor(page, live_server, brand, two_brands):
    """The builder is an aid: with scripts off the rules JSON is shown and saved as typed."""
    purpose, _phones = two_brands
    context = page.context.browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 1000})
    try:
        plain = context.new_page()
        plain.goto(f"{live_server.url}/admin/login/?next=/admin/segments/segment/add/")
        plain.fill("#id_username", "lotus-marketer")
        plain.fill("#id_password", "correct horse battery staple")
        plain.click("input[type=submit]")
        plain.wait_for_selector("#id_rules")
        assert plain.locator("#id_rules").is_visible() and plain.locator("#rule-builder").is_hidden()
        plain.fill("#id_name", "No script")
        plain.select_option("#id_purpose", str(purpose.pk))
        plain.select_option("#id_channel", "sms")
        plain.fill("#id_rules", json.dumps({"all": [{"field": "city", "op": "=", "value": "杭州"}]}))
        plain.click("input[name=_continue]")
        plain.wait_for_selector(".messagelist, .errornote")
        segment = Segment.objects.get(name="No script")
        assert (segment.slug, segment.rules["all"][0]["value"]) == ("no-script", "杭州")
    finally:
        context.close()

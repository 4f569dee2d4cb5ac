"""The segment editor in Chromium: the builder writes the rules JSON, the live count shows
the funnel, saving and "Build now" show the build's funnel."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission

from consent import services as consent_services
from consent.models import Notice, Purpose
from segments.models import Segment
from tests.conftest import see_every_brand
from tests.factories import UserFactory
from tests.segments.conftest import SEGMENT_PERMS, grant, shopper

from .conftest import ARTIFACTS, admin_login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def marketing_setup(brand, tmall):
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms"], is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销", body="v1"
    )
    for city in ("上海", "上海", "杭州", "北京"):
        grant(shopper(tmall, city=city), purpose)
    user = UserFactory(username="builder", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=[*SEGMENT_PERMS, "view_brand", "view_purpose"]))
    see_every_brand(user)
    return purpose


def test_builder_live_count_save_and_build(page, live_server, marketing_setup, brand):
    admin_login(page, live_server, "builder", "/admin/segments/segment/add/")

    page.wait_for_selector("#rule-builder:not([hidden])")
    page.select_option("#id_brand", str(brand.pk))
    page.fill("#id_name", "Shanghai SMS")
    page.press("#id_name", "Tab")  # the admin fills the slug from the name
    page.select_option("#id_purpose", str(marketing_setup.pk))
    page.select_option("#id_channel", "sms")

    builder = page.locator("#rule-builder")
    builder.locator("[data-add]").click()
    row = builder.locator(".rule-row").first
    row.locator("select").first.select_option("city")
    row.locator("select").nth(1).select_option("in")
    row.locator("input[type=text]").fill("上海, 杭州")
    assert json.loads(page.input_value("#id_rules")) == {
        "all": [{"field": "city", "op": "in", "value": ["上海", "杭州"]}]
    }

    page.click("#live-count-button")
    page.wait_for_selector("#live-count-table:not([hidden])")
    assert page.inner_text("[data-step='matched']") == "3"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-segment-editor.png"), full_page=True)

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist, .errornote")
    assert not page.locator(".errornote").count(), page.inner_text("#content")
    segment = Segment.objects.get(slug="shanghai-sms")
    assert segment.rules["all"][0]["value"] == ["上海", "杭州"]

    with page.expect_navigation():
        page.click("button[form=build-now-form]")
    segment.refresh_from_db()
    assert segment.current_build is not None and segment.current_build.final == 3
    page.screenshot(path=str(ARTIFACTS / "admin-segment-built.png"), full_page=True)


def test_nested_rules_leave_the_builder_to_the_json(page, live_server, marketing_setup, brand):
    segment = Segment.objects.create(
        brand=brand, purpose=marketing_setup, channel="sms", name="Nested", slug="nested",
        rules={"all": [{"not": {"field": "city", "op": "=", "value": "北京"}}]},
    )  # fmt: skip
    page.goto(live_server.url + f"/admin/login/?next=/admin/segments/segment/{segment.pk}/change/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "correct horse battery staple")
    page.click("input[type=submit]")

    page.wait_for_selector("#rule-builder [data-note]", state="visible")
    assert page.locator("#rule-builder .rule-row").count() == 0

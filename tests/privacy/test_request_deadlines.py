"""When a data-subject request is due, per jurisdiction, and where an extension moves it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.test import override_settings

from members.models import StoreMembership
from privacy import deadlines, rights
from tests.factories import BrandFactory, MemberFactory, StoreFactory

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, d, h, 0, tzinfo=SHANGHAI)


def due_day(jurisdiction: str, received: dt.datetime) -> dt.date:
    due = deadlines.due_at(jurisdiction, received).astimezone(SHANGHAI)
    assert due.time() == dt.time(23, 59, 59)  # the end of the last day
    return due.date()


def test_pipl_is_fifteen_calendar_days():
    assert due_day("CN", at(2026, 3, 20)) == dt.date(2026, 4, 4)


@override_settings(DSR_DUE_DAYS=30)
def test_pipl_days_come_from_settings():
    assert due_day("CN", at(2026, 3, 20)) == dt.date(2026, 4, 19)


def test_a_late_evening_request_counts_from_its_local_day():
    # 23:30 in Shanghai is still 20 March there (15:30 UTC).
    assert due_day("CN", at(2026, 3, 20, 23) + dt.timedelta(minutes=30)) == dt.date(2026, 4, 4)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (dt.date(2026, 1, 15), dt.date(2026, 2, 15)),
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),  # February has no 31st: its last day
        (dt.date(2028, 1, 31), dt.date(2028, 2, 29)),  # leap year
        (dt.date(2026, 3, 31), dt.date(2026, 4, 30)),
        (dt.date(2026, 12, 31), dt.date(2027, 1, 31)),  # over the year end
    ],
)
def test_gdpr_is_one_calendar_month(received, due):
    assert due_day("EU", at(received.year, received.month, received.day)) == due


def test_gdpr_extension_is_two_further_months_from_receipt():
    received = at(2026, 1, 31)
    first = deadlines.due_at("EU", received)
    extended = deadlines.extended_due_at("EU", received_at=received, due=first)
    assert extended.astimezone(SHANGHAI).date() == dt.date(2026, 4, 30)  # three months after 31 January


def test_russia_counts_working_days_over_a_weekend():
    # Thursday 2026-04-02 + 10 working days: 3, 6-10, 13-16 April (weekends skipped).
    assert due_day("RU", at(2026, 4, 2)) == dt.date(2026, 4, 16)


def test_a_request_made_on_a_saturday_starts_counting_on_monday():
    # Saturday 2026-04-04: Monday 6 April is working day 1, Friday 17 April is day 10.
    assert due_day("RU", at(2026, 4, 4)) == dt.date(2026, 4, 17)


def test_russia_skips_public_holidays_and_works_transferred_saturdays():
    # 2025: Saturday 1 November was a working day, Monday 3 and Tuesday 4 November were off.
    assert deadlines.is_russian_working_day(dt.date(2025, 11, 1))
    assert not deadlines.is_russian_working_day(dt.date(2025, 11, 3))
    assert not deadlines.is_russian_working_day(dt.date(2025, 11, 4))
    # Friday 31 Oct 2025 + 10: 1 (Sat, worked), 5, 6, 7, 10, 11, 12, 13, 14, 17 November.
    assert due_day("RU", at(2025, 10, 31)) == dt.date(2025, 11, 17)


def test_russia_extension_is_five_more_working_days():
    received = at(2026, 4, 2)
    first = deadlines.due_at("RU", received)  # Thursday 16 April
    extended = deadlines.extended_due_at("RU", received_at=received, due=first)
    assert extended.astimezone(SHANGHAI).date() == dt.date(2026, 4, 23)


def test_russian_corrections_take_seven_working_days_without_extension():
    # Thursday 2026-04-02 + 7 working days: 3, 6-10, 13 April.
    due = deadlines.due_at("RU", at(2026, 4, 2), "correction")
    assert due.astimezone(SHANGHAI).date() == dt.date(2026, 4, 13)
    assert deadlines.extended_due_at("RU", received_at=at(2026, 4, 2), due=due, kind="correction") is None
    assert deadlines.due_at("RU", at(2026, 4, 2), "access").astimezone(SHANGHAI).date() == dt.date(2026, 4, 16)


def test_pipl_has_no_extension_unless_configured():
    received = at(2026, 3, 20)
    first = deadlines.due_at("CN", received)
    assert deadlines.extended_due_at("CN", received_at=received, due=first) is None
    with override_settings(DSR_CN_EXTENSION_DAYS=15):
        assert deadlines.extended_due_at("CN", received_at=received, due=first).date() == dt.date(2026, 4, 19)


def test_unknown_jurisdiction_is_refused():
    with pytest.raises(ValueError, match="XX"):
        deadlines.rule_for("XX")


@pytest.mark.django_db
def test_a_request_takes_the_earliest_deadline_of_the_brands_holding_the_person():
    member = MemberFactory()
    eu = StoreFactory(brand=BrandFactory(code="eu-brand", jurisdiction="EU"))
    ru = StoreFactory(brand=BrandFactory(code="ru-brand", jurisdiction="RU"))
    StoreMembership.objects.create(member=member, store=eu, store_member_id="E1")
    assert rights.request_correction(member=member, account=None, details="x").jurisdiction == "EU"
    StoreMembership.objects.create(member=member, store=ru, store_member_id="R1")
    request = rights.request_correction(member=member, account=None, details="y")
    assert request.jurisdiction == "RU"  # 7 working days (a correction) come before one month
    assert request.due_at == deadlines.due_at("RU", request.received_at, "correction")


@pytest.mark.django_db
@override_settings(DSR_DEFAULT_JURISDICTION="EU")
def test_a_person_without_memberships_gets_the_default_jurisdiction():
    request = rights.request_correction(member=MemberFactory(), account=None, details="x")
    assert request.jurisdiction == "EU"

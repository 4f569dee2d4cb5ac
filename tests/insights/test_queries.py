"""Each dashboard query against figures counted by hand (see conftest.py's world)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from insights import queries, services
from members.models import Order
from privacy.models import DataSubjectRequest

from .conftest import SINCE, UNTIL, at

pytestmark = pytest.mark.django_db


def test_members_per_store_counts_active_members(world):
    # E (merged) is not counted at WeChat; rose's store is not listed; nobody at rose's
    # store is counted for lotus.
    w = world
    assert queries.members_per_store(w.lotus) == {w.tmall.pk: 4, w.tmall2.pk: 1, w.jd.pk: 3, w.wechat.pk: 1}


def test_store_months_sum_joins_orders_and_member_orders_of_the_period(world):
    w, p = world, world.people

    def order(store, when, who=None):
        Order.objects.create(store=store, external_id=f"{store.code}-{when:%m%d%H}", amount=100,
                             placed_at=when, member=p[who] if who else None)  # fmt: skip

    order(w.tmall, at(2026, 1, 10), "A")
    order(w.tmall, at(2026, 1, 11))  # a guest
    order(w.jd, at(2026, 1, 15), "C")
    order(w.jd, at(2026, 1, 19, 1), "C")  # after the period
    order(w.jd, at(2026, 1, 4, 23, 59), "D")  # before it (local time)
    order(w.rose_tmall, at(2026, 1, 10), "F")  # another brand
    services.refresh_figures(brand=w.lotus)
    jan = dt.date(2026, 1, 1)
    rows = {(m.store_id, m.month): (m.joined, m.orders, m.member_orders, m.rate)
            for m in queries.store_months(w.lotus, SINCE, UNTIL)}  # fmt: skip
    # Joins: A at Tmall on Jan 10 and B on the period's first moment; D joined JD in 2025.
    assert rows == {
        (w.tmall.pk, jan): (2, 2, 1, Decimal("0.5000")),
        (w.jd.pk, jan): (0, 1, 1, Decimal("1.0000")),
    }
    assert queries.StoreMonth(w.jd.pk, jan, 1, 0, 0).rate is None


def test_members_by_platform_counts_a_person_once_per_platform(world):
    # B is at both Tmall stores: one Tmall member.
    assert queries.members_by_platform(world.lotus) == {"jd": 3, "tmall": 4, "wechat": 1}
    assert queries.members_by_platform(world.rose) == {"tmall": 2}


def test_platform_overlap(world):
    # 1 platform: B (two Tmall stores), D, G; 2: C; 3+: A. E is merged, F is rose's.
    assert queries.platform_overlap(world.lotus) == {1: 3, 2: 1, 3: 1}
    assert queries.platform_overlap(world.rose) == {1: 2, 2: 0, 3: 0}


def test_a_membership_that_ended_no_longer_counts_as_a_member_there(world):
    # A leaves WeChat (解绑, pushed by the platform): A is still at Tmall and JD.
    from members.models import StoreMembership

    StoreMembership.objects.filter(store=world.wechat, member=world.people["A"]).update(left_at=at(2026, 2, 1))
    assert world.wechat.pk not in queries.members_per_store(world.lotus)
    assert "wechat" not in queries.members_by_platform(world.lotus)
    assert queries.platform_overlap(world.lotus) == {1: 3, 2: 2, 3: 0}


def test_contactable_per_purpose_and_channel(ledger):
    # Now: only D's SMS grant stands (A and B withdrew later; C withdrew e-mail).
    rows = [(c.purpose, c.channel, c.members) for c in queries.contactable(ledger.lotus)]
    assert rows == [("marketing", "sms", 1), ("marketing", "email", 0)]


def test_consent_weeks_opt_ins_and_withdrawals_by_source(ledger):
    services.refresh_figures(brand=ledger.lotus)
    weeks = queries.consent_weeks(ledger.lotus, SINCE, UNTIL)
    first, second = dt.date(2026, 1, 5), dt.date(2026, 1, 12)
    assert weeks.weeks == [first, second]
    # The pending request does not count; confirmed does; Jan 4 and Jan 19 are outside.
    assert weeks.opt_ins == {first: 3, second: 1}
    assert weeks.withdrawals == {
        first: {"privacy_center": 1},
        second: {"unsubscribe_link": 2, "privacy_center": 1},
    }
    assert weeks.opt_in_rate(first) == Decimal("0.7500")
    assert weeks.opt_in_rate(second) == Decimal("0.2500")
    assert weeks.opt_in_rate(dt.date(2025, 12, 29)) is None
    assert weeks.withdrawal_sources() == ["privacy_center", "unsubscribe_link"]


def test_weeks_between_covers_partial_weeks():
    assert queries.weeks_between(at(2026, 1, 7, 0), at(2026, 1, 13, 0)) == [dt.date(2026, 1, 5), dt.date(2026, 1, 12)]


def test_lifecycle_now(world):
    assert queries.lifecycle_now(world.lotus) == {
        "prospect": 2, "new": 0, "active": 1, "loyal": 1, "at_risk": 1, "lapsed": 0,
    }  # fmt: skip


def test_data_requests_open_due_soon_overdue(world):
    now = at(2026, 1, 16)
    p = world.people

    def request(who, status, received, due, completed=None):
        DataSubjectRequest.objects.create(member=p[who], kind="access", status=status, received_at=received,
                                          due_at=due, completed_at=completed)  # fmt: skip

    request("A", "received", at(2026, 1, 6), now + dt.timedelta(days=1))  # open, due soon
    request("B", "in_progress", at(2026, 1, 6), now - dt.timedelta(hours=1))  # open, overdue
    request("C", "received", at(2026, 1, 10), now + dt.timedelta(days=10))  # open
    request("D", "completed", at(2026, 1, 7), at(2026, 1, 22), at(2026, 1, 9))  # answered in the period
    request("A", "rejected", at(2025, 12, 1), at(2025, 12, 16), at(2025, 12, 2))  # before the period
    request("F", "received", at(2026, 1, 6), now - dt.timedelta(days=1))  # rose's
    assert queries.data_requests(world.lotus, SINCE, UNTIL, now=now) == {
        "open": 3, "overdue": 1, "due_soon": 1, "received": 4, "answered": 1,
    }  # fmt: skip

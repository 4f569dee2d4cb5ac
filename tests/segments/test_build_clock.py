"""A build reads the clock once: every time-relative rule (order windows, ages, "days
since", the minor age cutoff of the consent step, the weekly cap's window) is evaluated as
of the moment the build started, so a build that runs across midnight or a birthday
counts everyone by the same clock (issue 27)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent.queries import minor_cutoff
from segments import queries, services
from segments.models import ContactLog, SegmentBuild

from .conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db

EVERYONE = {"all": [{"field": "age", "op": ">=", "value": 0}]}


def _flags(segment, now) -> dict[int, tuple[bool, bool, bool]]:
    rows = queries.flagged_members(segment, segment.rules, now)
    return {row["member_ref"]: (bool(row["c"]), bool(row["u"]), bool(row["r"])) for row in rows}


def test_the_build_passes_its_start_to_every_rule(brand, marketing, tmall, monkeypatch):
    shopper(tmall)
    seen = []
    original = queries.flagged_members

    def spy(segment, rules, now):
        seen.append(now)
        return original(segment, rules, now)

    monkeypatch.setattr(services, "flagged_members", spy)
    done = build(make_segment(brand, marketing, EVERYONE))

    assert done.status == SegmentBuild.Status.SUCCEEDED
    assert seen == [done.started_at]


def test_the_minor_cutoff_is_the_builds_not_the_clocks(brand, marketing, tmall):
    """Someone who turns 14 today is a minor as of yesterday: a build that started
    yesterday keeps them out of the consent step even if it runs on today."""
    now = timezone.now()
    birthday = minor_cutoff(timezone.localdate(now))  # exactly MINOR_AGE years ago today
    teen = shopper(tmall, birth_date=birthday)
    grant(teen, marketing)
    segment = make_segment(brand, marketing, EVERYONE)

    assert _flags(segment, now)[teen.pk][0] is True
    assert _flags(segment, now - dt.timedelta(days=1))[teen.pk][0] is False


def test_age_and_order_windows_follow_the_build_clock(brand, marketing, tmall):
    now = timezone.now()
    buyer = shopper(tmall, orders=1, days_ago=20, birth_date=dt.date(1990, 1, 1))
    segment = make_segment(brand, marketing, {"all": [{"field": "orders", "op": ">=", "value": 1, "within_days": 30}]})
    assert buyer.pk in _flags(segment, now)
    assert buyer.pk not in _flags(segment, now + dt.timedelta(days=15))


def test_the_weekly_cap_window_follows_the_build_clock(brand, marketing, tmall, settings):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 1
    now = timezone.now()
    member = shopper(tmall)
    grant(member, marketing)
    ContactLog.objects.create(member=member, brand=brand, purpose=marketing, channel="sms", sent_at=now)
    segment = make_segment(brand, marketing, EVERYONE)

    assert _flags(segment, now)[member.pk][1] is False  # one send this week: capped
    assert _flags(segment, now + dt.timedelta(days=8))[member.pk][1] is True  # the send is out of the window


def test_a_build_costs_the_same_queries_whatever_the_number_of_members(
    brand, marketing, tmall, django_assert_max_num_queries
):
    rules = {
        "all": [
            {"field": "orders", "op": ">=", "value": 1, "within_days": 180},
            {"field": "total_spent", "op": ">", "value": 100},
        ]
    }
    for _ in range(3):
        grant(shopper(tmall, orders=2), marketing)
    segment = make_segment(brand, marketing, rules)
    requested, _ = services.request_build(segment, enqueue=False)
    # 12 on SQLite; PostgreSQL adds the transaction settings and the order-rule planning
    # (one EXPLAIN, one catalogue read).
    with django_assert_max_num_queries(14) as few:
        services.run_build(requested.pk)
    for _ in range(6):
        grant(shopper(tmall, orders=2), marketing)
    requested, _ = services.request_build(segment, enqueue=False)
    with django_assert_max_num_queries(len(few.captured_queries)):
        done = services.run_build(requested.pk)
    assert done.final == 9

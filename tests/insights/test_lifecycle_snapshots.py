"""Monthly lifecycle snapshots: stages as of each month's first moment, moves between
stages per brand, counted by hand; taken once per month, in order."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from insights import queries, services
from insights.models import LifecycleCount, LifecycleSnapshot, MemberStage
from members.models import Order, StoreMembership

from .conftest import at

pytestmark = pytest.mark.django_db
FEB, MAR = dt.date(2026, 2, 1), dt.date(2026, 3, 1)


@pytest.fixture
def orders(world):
    p = world.people

    def order(who, when, store=None):
        Order.objects.create(store=store or world.tmall, external_id=f"{who}{when:%y%m%d}", amount=50,
                             placed_at=when, member=p[who])  # fmt: skip

    order("A", at(2026, 1, 20))  # Feb 1: new (12 days); Mar 1: active (40 days)
    order("C", at(2025, 7, 1))  # Feb 1: lapsed
    order("C", at(2026, 2, 10))  # Mar 1: active again
    order("D", at(2025, 10, 15))  # at risk on both dates
    order("A", at(2026, 3, 5))  # after both snapshots: never counted
    # G joins after Feb 1 (at lotus and rose): only in March's snapshot, as a newcomer.
    StoreMembership.objects.filter(member=p["G"]).update(joined_at=at(2026, 2, 15))
    return world


def counts(brand, month):
    return {
        (c.from_stage, c.to_stage): c.members for c in LifecycleCount.objects.filter(brand=brand, snapshot__month=month)
    }


def test_first_snapshot_counts_everyone_as_new_to_the_history(orders):
    snapshot = services.take_lifecycle_snapshot(month=FEB)
    assert counts(orders.lotus, FEB) == {("", "new"): 1, ("", "prospect"): 1, ("", "lapsed"): 1, ("", "at_risk"): 1}
    assert counts(orders.rose, FEB) == {("", "prospect"): 1}  # F; G is not a member yet
    assert snapshot.members == 5  # A, B, C, D, F (E merged, G later)
    assert MemberStage.objects.get(member_id=orders.people["A"].pk).stage == "new"


def test_next_month_records_the_moves(orders):
    services.take_lifecycle_snapshot(month=FEB)
    services.take_lifecycle_snapshot(month=MAR)
    assert counts(orders.lotus, MAR) == {
        ("new", "active"): 1,  # A
        ("prospect", "prospect"): 1,  # B
        ("lapsed", "active"): 1,  # C
        ("at_risk", "at_risk"): 1,  # D
        ("", "prospect"): 1,  # G
    }
    history = queries.lifecycle_history(orders.lotus, at(2026, 2, 10, 0), at(2026, 3, 20, 0))
    assert history.months == [FEB, MAR]
    assert history.distribution[MAR] == {
        "prospect": 2, "new": 0, "active": 2, "loyal": 0, "at_risk": 1, "lapsed": 0,
    }  # fmt: skip
    assert history.moved(MAR) == 2
    assert history.moved(FEB) == 0
    # A period within March touches only March's snapshot.
    assert queries.lifecycle_history(orders.lotus, at(2026, 3, 2, 0), at(2026, 3, 9, 0)).months == [MAR]


def test_a_month_is_taken_once(orders):
    first = services.take_lifecycle_snapshot(month=FEB)
    again = services.take_lifecycle_snapshot(month=dt.date(2026, 2, 17))
    assert again.pk == first.pk
    assert LifecycleSnapshot.objects.count() == 1
    assert sum(counts(orders.lotus, FEB).values()) == 4


def test_an_older_month_than_the_latest_is_refused(orders):
    services.take_lifecycle_snapshot(month=MAR)
    with pytest.raises(services.SnapshotOutOfOrder):
        services.take_lifecycle_snapshot(month=FEB)
    assert LifecycleSnapshot.objects.count() == 1


def test_nightly_task_takes_the_current_month(orders, settings):
    from insights.tasks import refresh_dashboard

    refresh_dashboard()
    refresh_dashboard()
    assert list(LifecycleSnapshot.objects.values_list("month", flat=True)) == [
        services.month_start(timezone.localdate())
    ]


def test_refresh_dashboard_command_stores_every_brands_figures(orders):
    from io import StringIO

    from django.core.management import call_command

    from insights.models import BrandFigures

    out = StringIO()
    call_command("refresh_dashboard", stdout=out)
    assert "Dashboard figures refreshed" in out.getvalue()
    stored = {f.brand_id: f.data for f in BrandFigures.objects.all()}
    assert stored[orders.lotus.pk]["overlap"] == {"1": 3, "2": 1, "3": 1}
    assert stored[orders.rose.pk]["platforms"] == {"tmall": 2}

"""Concurrent resolution on a real PostgreSQL: each thread holds its own connection, and
a barrier releases them together so their transactions really overlap."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from members import services
from members.identities import StoreRecord
from members.models import Identity, Member, MergeEvent, StoreMembership
from tests.factories import BrandFactory, StoreFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(jobs: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def worker(i: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = job()
        except BaseException as exc:  # surfaced in the main thread below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return results


def resolver(store, member_id, **values) -> Callable[[], services.Resolution]:
    def job() -> services.Resolution:
        return services.resolve_store_record(StoreRecord.clean(store=store, store_member_id=member_id, **values))

    return job


@pytest.fixture
def stores():
    brand = BrandFactory(code="conc")
    return [StoreFactory(brand=brand, code=f"conc-{i}", platform="tmall") for i in range(8)]


def test_runs_on_postgres():
    assert connection.vendor == "postgresql"


def test_two_writers_same_new_phone_end_with_one_member(stores):
    for round_ in range(10):
        phone = f"1391234{round_:04d}"
        results = run_together(
            [resolver(stores[0], f"A{round_}", phone=phone), resolver(stores[1], f"B{round_}", phone=phone)]
        )
        member_ids = {r.member.pk for r in results}
        assert len(member_ids) == 1, f"round {round_}: {member_ids}"
        assert sum(r.created for r in results) == 1
    assert Member.objects.active().count() == 10
    assert Identity.objects.filter(kind="phone").count() == 10
    assert StoreMembership.objects.count() == 20


def test_eight_writers_same_phone_and_email(stores):
    jobs = [resolver(stores[i], f"E{i}", phone="13987654321", email="same@example.com") for i in range(8)]
    results = run_together(jobs)
    assert len({r.member.pk for r in results}) == 1
    assert Member.objects.active().count() == 1
    assert Member.objects.count() == 1  # nobody created a member that then had to be merged
    assert StoreMembership.objects.count() == 8


def test_crossing_merges_do_not_deadlock_or_split(stores):
    """A-B, B-C and A-C linked at the same moment: one person in the end."""
    a = resolver(stores[0], "A", phone="13911110000")()
    b = resolver(stores[1], "B", email="b@example.com")()
    c = resolver(stores[2], "C", wechat_unionid="oUnionCCCCCCCCCCCC")()
    assert len({a.member.pk, b.member.pk, c.member.pk}) == 3
    run_together(
        [
            resolver(stores[3], "AB", phone="13911110000", email="b@example.com"),
            resolver(stores[4], "BC", email="b@example.com", wechat_unionid="oUnionCCCCCCCCCCCC"),
            resolver(stores[5], "AC", phone="13911110000", wechat_unionid="oUnionCCCCCCCCCCCC"),
        ]
    )
    assert Member.objects.active().count() == 1
    survivor = Member.objects.active().get()
    assert survivor.pk == a.member.pk  # the oldest wins
    assert survivor.identities.count() == Identity.objects.count()
    assert MergeEvent.objects.count() == 2

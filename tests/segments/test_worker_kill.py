"""⚑ A build killed half-way leaves the previous build visible; the task runs again and
completes once. Real ``celery worker`` processes, Redis broker, PostgreSQL."""

from __future__ import annotations

import time

import psycopg
import pytest

from cdp.models import AuditLog
from segments import services
from segments.models import Segment, SegmentBuild, SegmentMember
from tests.workers import database_url, start_worker, stop_worker, wait_for

from .conftest import build, grant, make_segment, shopper

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


def test_sigkill_mid_build_keeps_previous_and_redelivery_completes_once(real_celery, brand, tmall, marketing):
    people = [shopper(tmall) for _ in range(5)]
    for member in people[:3]:
        grant(member, marketing)
    segment = make_segment(brand, marketing, SHANGHAI)
    previous = build(segment)
    assert previous.final == 3
    for member in people[3:]:  # the next build will have more people
        grant(member, marketing)

    # Hold the snapshot table so the build stops inside its transaction, after it claimed
    # the build and counted the funnel, before it could write or swap anything.
    blocker = psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(f"LOCK TABLE {SegmentMember._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    worker = start_worker(CELERY_VISIBILITY_TIMEOUT="3")
    try:
        requested, created = services.request_build(segment)  # sent to Redis on commit
        assert created
        wait_for(
            lambda: SegmentBuild.objects.filter(pk=requested.pk, status="running").exists(), 60, "the build to start"
        )
        worker.kill()  # SIGKILL: no shutdown, no ack
        worker.wait(timeout=10)

        segment.refresh_from_db()
        assert segment.current_build_id == previous.pk
        blocker.rollback()  # the orphaned backend now finishes its statement and rolls back
        assert not SegmentMember.objects.filter(build_id=requested.pk).exists()
        assert SegmentMember.objects.filter(build_id=previous.pk).count() == 3

        # Kombu scans for unacknowledged messages older than the visibility timeout on the
        # first of every ten checks: start the new worker once the message is old enough.
        time.sleep(4)
        worker = start_worker(CELERY_VISIBILITY_TIMEOUT="3")
        wait_for(
            lambda: SegmentBuild.objects.filter(pk=requested.pk, status="succeeded").exists(),
            90,
            "the redelivered build to finish",
        )
    finally:
        blocker.close()
        stop_worker(worker)

    done = SegmentBuild.objects.get(pk=requested.pk)
    segment.refresh_from_db()
    assert segment.current_build_id == done.pk
    assert done.attempts == 2
    assert done.final == 5
    assert SegmentMember.objects.filter(build_id=done.pk).count() == 5
    assert AuditLog.objects.filter(action="segment.built", object_id=str(done.pk)).count() == 1
    assert SegmentBuild.objects.filter(segment=segment).count() == 2
    assert Segment.objects.get(pk=segment.pk).current_build.status == "succeeded"

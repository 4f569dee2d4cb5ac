"""A real ``celery worker`` process runs a task sent through Redis against PostgreSQL."""

from __future__ import annotations

import pytest

from members.models import Member
from members.tasks import refresh_member_metrics
from tests.factories import MemberFactory, OrderFactory
from tests.workers import start_worker, stop_worker

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(real_celery):
    """Start a worker on the test database; stop it afterwards whatever happened."""
    proc = start_worker()
    yield proc
    stop_worker(proc)


def test_metrics_task_runs_in_a_real_worker(worker, brand, tmall):
    member = MemberFactory()
    OrderFactory(store=tmall, member=member)
    OrderFactory(store=tmall, member=member)

    result = refresh_member_metrics.delay(member_ids=[member.pk])

    assert result.get(timeout=60) == 1
    member.refresh_from_db()
    assert (member.order_count, member.lifecycle_stage) == (2, "new")
    assert Member.objects.filter(metrics_refreshed_at__isnull=False).count() == 1

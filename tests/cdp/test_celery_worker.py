"""A real ``celery worker`` process runs a task sent through Redis against PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from cdp.celery import app
from members.models import Member
from members.tasks import refresh_member_metrics
from tests.factories import MemberFactory, OrderFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker():
    """Start a worker on the test database; stop it afterwards whatever happened."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "CDP_TESTING": "1",
        "DATABASE_URL": _database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cdp",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"worker exited early:\n{proc.stdout.read()}")
            replies = app.control.ping(timeout=1.0)
            if replies:
                break
        else:
            pytest.fail("worker did not answer a ping within 60 s")
        yield proc
    finally:
        app.conf.task_always_eager = previous
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_metrics_task_runs_in_a_real_worker(worker, brand, tmall):
    member = MemberFactory()
    OrderFactory(store=tmall, member=member)
    OrderFactory(store=tmall, member=member)

    result = refresh_member_metrics.delay(member_ids=[member.pk])

    assert result.get(timeout=60) == 1
    member.refresh_from_db()
    assert (member.order_count, member.lifecycle_stage) == (2, "new")
    assert Member.objects.filter(metrics_refreshed_at__isnull=False).count() == 1

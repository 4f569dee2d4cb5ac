"""Beat runs from django-celery-beat's database: settings' entries are installed there, and
segment schedules live next to them."""

from __future__ import annotations

from unittest import mock

from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from cdp.celery import app


def test_database_scheduler_installs_the_nightly_metrics_refresh(db):
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"

    # The scheduler closes "old" connections, and Django counts a connection inside the
    # test's transaction as one: keep it open so the test database stays reachable.
    with mock.patch("django_celery_beat.schedulers.close_old_connections"):
        DatabaseScheduler(app=app, lazy=False)  # what `celery beat` does on start

    task = PeriodicTask.objects.get(name="refresh-member-metrics-nightly")
    assert task.task == "members.tasks.refresh_member_metrics"
    assert (task.crontab.hour, task.crontab.minute) == ("3", "30")
    assert PeriodicTask.objects.filter(task="consent.tasks.create_checkpoint", interval__isnull=False).exists()

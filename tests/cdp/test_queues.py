"""Every task has a queue a worker consumes (cdp/queues.py), and the consent path never
shares a queue with bulk work."""

from __future__ import annotations

import pytest
from django.conf import settings

from cdp import queues
from cdp.celery import app

APPS = ("cdp.", "members.", "consent.", "imports.", "privacy.", "segments.", "insights.", "webhooks.")


@pytest.fixture(scope="module")
def registered() -> list[str]:
    """Every task the apps register (what a worker loads), by name."""
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith(APPS))


def queue_of(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_every_task_is_routed_to_a_declared_queue(registered):
    assert len(registered) >= 30
    consumed = set(app.amqp.queues)  # what a worker without -Q consumes
    assert consumed == set(queues.QUEUES)
    unrouted = [name for name in registered if name not in queues.TASK_QUEUES]
    assert unrouted == [], "add these tasks to cdp/queues.py"
    assert {name: queue_of(name) for name in registered} == {name: queues.TASK_QUEUES[name] for name in registered}
    assert {queue_of(name) for name in registered} <= consumed
    # No route names a task that does not exist (a rename left behind).
    assert set(queues.TASK_QUEUES) <= set(registered)


def test_beat_entries_are_routed(registered):
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in queues.TASK_QUEUES, entry["task"]


def test_the_consent_path_stays_off_the_bulk_queues():
    quick = {
        "cdp.tasks.relay_outbox", "webhooks.tasks.publish_event", "webhooks.tasks.publish_events",
        "webhooks.tasks.deliver", "webhooks.tasks.retry_due", "consent.tasks.send_opt_in_email",
        "privacy.tasks.erase_member_data", "imports.tasks.apply_platform_events", "imports.tasks.mark_stalled_jobs",
        "segments.tasks.mark_stalled_builds",
    }  # fmt: skip
    bulk = {"imports.tasks.run_import_job", "imports.tasks.import_chunk", "segments.tasks.run_build_task"}
    assert {queue_of(name) for name in quick} <= set(queues.QUICK)
    assert {queue_of(name) for name in bulk} <= set(queues.BULK)
    assert queue_of("webhooks.tasks.deliver") == "webhooks" and queue_of("cdp.tasks.relay_outbox") == "outbox"

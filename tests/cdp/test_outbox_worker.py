"""The outbox against PostgreSQL, Redis and a real ``celery worker``: a consent change made
while the broker is unreachable commits and answers 201; its webhook waits in the outbox,
/healthz says so, and when the broker is back the relay sends it and the worker delivers
it to a real receiver. Two relays at once send every row exactly once."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from cdp import broker, outbox, queues
from cdp.models import OutboxMessage
from tests.api.conftest import add_purpose, client_for, make_key, member_of
from tests.api.receiver import Receiver
from tests.workers import start_worker, stop_worker, wait_for
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: the broker is "down" for this process


@pytest.fixture(autouse=True)
def _fresh_relay():
    broker.breaker.reset()
    broker.drop_connection()
    webhooks.forget_subscribers()
    yield
    broker.breaker.reset()
    broker.drop_connection()
    webhooks.forget_subscribers()


@pytest.fixture
def empty_queue(real_celery):
    """The broker's task queue of this test's Redis database, emptied before and after."""

    def purge() -> None:
        with real_celery.connection_for_write() as conn:
            conn.default_channel.client.delete(*queues.QUEUES)

    purge()
    yield real_celery
    purge()


def test_a_change_made_while_the_broker_is_down_is_delivered_when_it_is_back(
    real_celery, empty_queue, brand, tmall, client, monkeypatch
):
    add_purpose(brand)
    member_of(tmall, name="Alice", phone="+8613800138000", email="alice@example.com")
    api = client_for(make_key(brand)[1])
    real_broker = real_celery.conf.broker_url
    with Receiver() as receiver:
        webhooks.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        worker = start_worker()
        try:
            # The broker goes away for the web process (the worker waits for it).
            monkeypatch.setattr(real_celery.conf, "broker_url", CLOSED)
            response = api.post("/api/v1/consent-events/", {
                "external_id": "e1", "purpose": "marketing", "channel": "sms", "action": "granted",
                "occurred_at": "2026-03-01T10:00:00+08:00", "phone": "13800138000",
            })  # fmt: skip
            assert response.status_code == 201
            row = OutboxMessage.objects.get()
            assert (row.task, row.sent_at) == ("webhooks.tasks.publish_event", None)

            health = client.get(reverse("healthz")).json()
            assert (health["status"], health["broker"]) == ("degraded", "unreachable")
            assert health["outbox"]["waiting"] == 1 and health["outbox"]["oldest_waiting_seconds"] >= 0
            assert receiver.requests == [] and not Delivery.objects.exists()

            # The broker is back: the relay (beat's task, here the operators' command) sends it.
            monkeypatch.setattr(real_celery.conf, "broker_url", real_broker)
            broker.drop_connection()
            call_command("relay_outbox", "--now")
            wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 1, 60, "the delivery")
            wait_for(lambda: not outbox.waiting().exists(), 30, "every outbox row sent")
        finally:
            stop_worker(worker)
    assert [p["data"]["event"]["action"] for p in receiver.payloads()] == ["granted"]
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 2
    # The worker's own side effect (the delivery task) went through the outbox too.
    assert set(OutboxMessage.objects.values_list("task", flat=True)) == {
        "webhooks.tasks.publish_event",
        "webhooks.tasks.deliver",
    }
    health = client.get(reverse("healthz")).json()
    assert (health["status"], health["broker"], health["outbox"]["waiting"]) == ("ok", "ok", 0)


def test_two_relays_at_once_send_every_row_exactly_once(empty_queue):
    rows = OutboxMessage.objects.bulk_create(
        [OutboxMessage(task="members.tasks.refresh_member_metrics", kwargs={"member_ids": [n]}) for n in range(400)]
    )
    start = threading.Barrier(4)
    results: list[outbox.Relayed] = []

    def relay() -> None:
        try:
            start.wait()
            results.append(outbox.relay_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.sent for r in results) == len(rows) and not any(r.failed for r in results)
    assert sum(1 for r in results if r.sent) > 1  # they really shared the work
    with empty_queue.connection_for_read() as conn:
        queued = conn.default_channel.client.lrange(queues.TASK_QUEUES["members.tasks.refresh_member_metrics"], 0, -1)
    ids = Counter(json.loads(message)["headers"]["id"] for message in queued)
    assert ids == Counter({f"outbox-{row.pk}": 1 for row in rows})
    assert not outbox.waiting().exists()
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}

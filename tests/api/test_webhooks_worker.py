"""End to end: a withdrawal in the privacy center reaches a real HTTP receiver on
127.0.0.1, through the Redis broker and a real ``celery worker``, signed and in order;
a failing receiver is retried by the worker (countdown), not by the request."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from consent import services as consent_services
from tests.workers import start_worker, stop_worker, wait_for
from webhooks import services, signing
from webhooks.models import Delivery, DeliveryAttempt

from .receiver import Receiver
from .test_webhooks_order import applied_in_arrival_order, arrivals

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_privacy_center_withdrawal_reaches_the_receiver(real_celery, brand, tmall, marketing, alice, settings):
    with Receiver() as receiver:
        receiver.script = [503]  # the first attempt fails: the worker retries after the backoff
        subscription, secret = services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        worker = start_worker(WEBHOOK_RETRY_BASE_SECONDS="1")
        try:
            consent_services.record_consent(member=alice, brand=brand, purpose=marketing, channel="sms",
                                            action="granted", source_type="store")  # fmt: skip
            started = time.monotonic()
            consent_services.record_consent(
                member=alice, brand=brand, purpose=marketing, channel="sms", action="withdrawn",
                source_type="privacy_center", evidence={"ip": "203.0.113.9"},
            )  # fmt: skip
            wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 2, 60, "both deliveries")
            elapsed = time.monotonic() - started
        finally:
            stop_worker(worker)
    ok = [r for r in receiver.requests if r["answered"] == 200]
    payloads = sorted(({**p} for p in receiver.payloads() if p), key=lambda p: p["sequence"])
    withdrawal = [p for p in payloads if p["data"]["event"]["action"] == "withdrawn"][0]
    assert withdrawal["data"]["event"]["source"] == "privacy_center"
    assert withdrawal["data"]["state"]["action"] == "withdrawn"
    assert withdrawal["sequence"] == max(p["sequence"] for p in payloads)
    for request in ok:
        assert signing.verify(secret, request["headers"]["x-cdp-signature"], request["body"])
    assert len(receiver.requests) == 3  # one failure, retried
    assert Delivery.objects.filter(attempts=2).count() == 1
    assert elapsed < 30
    assert subscription.pk


def _choose(member, purpose, action: str) -> None:
    consent_services.record_consent(member=member, brand=purpose.brand, purpose=purpose, channel="sms", action=action,
                                    source_type="privacy_center")  # fmt: skip


def test_a_retried_grant_arrives_before_the_withdrawal(real_celery, brand, tmall, marketing, alice):
    """The receiver fails the first delivery about alice and applies the others in the
    order they arrive: it must end with the withdrawal. Bob's delivery does not wait."""
    from .conftest import member_of

    bob = member_of(tmall, name="Bob", phone="+8613700137000", email="bob@example.com")
    with Receiver() as receiver:
        receiver.script = [500]
        services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        worker = start_worker(WEBHOOK_RETRY_BASE_SECONDS="4")
        try:
            _choose(alice, marketing, "granted")
            wait_for(lambda: len(receiver.requests) == 1, 30, "the grant's first attempt")
            _choose(alice, marketing, "withdrawn")
            _choose(bob, marketing, "withdrawn")
            wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == 3, 60, "three deliveries")
        finally:
            stop_worker(worker)
    arrived = arrivals(receiver)
    alices = [a for a in arrived if a[0] == alice.pk]
    assert [(action, answer) for _m, action, _s, answer in alices] == [
        ("granted", 500), ("granted", 200), ("withdrawn", 200),
    ]  # fmt: skip
    assert alices[0][2] == alices[1][2] < alices[2][2]
    bobs_turn = next(i for i, a in enumerate(arrived) if a[0] == bob.pk)
    assert bobs_turn < arrived.index(alices[1])  # not held up behind alice's retry
    withdrawal = Delivery.objects.get(member_id=alice.pk, sequence=alices[2][2])
    grant_ok = DeliveryAttempt.objects.get(
        delivery__member_id=alice.pk, status_code=200, delivery__sequence=alices[0][2]
    )
    assert withdrawal.attempt_log.get().started_at >= grant_ok.started_at


def test_two_workers_send_a_members_deliveries_one_at_a_time(real_celery, brand, marketing, alice):
    """Two workers share the queue; one member's deliveries still reach the receiver one
    after the other, in sequence order, and it ends with the member's last choice."""
    from cdp.celery import app

    actions = ["granted", "withdrawn"] * 4
    with Receiver() as receiver:
        receiver.script = [500]
        services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        workers = [start_worker(WEBHOOK_RETRY_BASE_SECONDS="1")]
        try:
            workers.append(start_worker(WEBHOOK_RETRY_BASE_SECONDS="1"))
            wait_for(lambda: len(app.control.ping(timeout=1.0)) >= 2, 60, "two workers")
            for action in actions:
                _choose(alice, marketing, action)
            wait_for(lambda: Delivery.objects.filter(status="succeeded").count() == len(actions), 90, "all deliveries")
        finally:
            for worker in workers:
                stop_worker(worker)
    sequences = [p["sequence"] for p in receiver.payloads()]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(actions)
    assert applied_in_arrival_order(receiver, alice.pk) == actions[-1]
    attempts = list(DeliveryAttempt.objects.order_by("started_at"))
    assert len(attempts) == len(actions) + 1
    for before, after in zip(attempts, attempts[1:], strict=False):
        assert before.started_at + dt.timedelta(milliseconds=before.duration_ms) <= after.started_at

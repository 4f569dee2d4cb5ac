"""End to end: a withdrawal in the privacy center reaches a real HTTP receiver on
127.0.0.1, through the Redis broker and a real ``celery worker``, signed and in order;
a failing receiver is retried by the worker (countdown), not by the request."""

from __future__ import annotations

import time

import pytest

from consent import services as consent_services
from tests.workers import start_worker, stop_worker, wait_for
from webhooks import services, signing
from webhooks.models import Delivery

from .receiver import Receiver

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

"""Receivers verify deliveries with the Standard Webhooks library of their language, not
with our recipe: here with the Python ``standardwebhooks`` package, exactly as a receiver
would (the secret it was given, the headers and the body it received)."""

from __future__ import annotations

import base64

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from consent import services as consent_services
from webhooks import services, signing
from webhooks.models import Delivery, Subscription

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def _grant_then_withdraw(member, purpose, capture):
    for action in ("granted", "withdrawn"):
        with capture(execute=True):
            consent_services.record_consent(member=member, brand=purpose.brand, purpose=purpose, channel="sms",
                                            action=action, source_type="store")  # fmt: skip


def test_a_receiver_verifies_deliveries_with_the_standard_webhooks_library(
    api, receiver, marketing, alice, django_capture_on_commit_callbacks
):
    services.forget_subscribers()
    created = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["consent.changed"]}, format="json")
    secret = created.json()["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    _grant_then_withdraw(alice, marketing, django_capture_on_commit_callbacks)

    webhook = Webhook(secret)
    ids = []
    for request in receiver.requests:
        payload = webhook.verify(request["body"], request["headers"])  # raises if anything is off
        assert payload["type"] == "consent.changed"
        ids.append(request["headers"]["webhook-id"])
        assert ids[-1] == payload["id"]  # the id doubles as the idempotency key
    assert ids == [str(d.event_id) for d in Delivery.objects.order_by("pk")] and len(set(ids)) == 2

    first = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        webhook.verify(first["body"] + b" ", first["headers"])  # a changed body
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(first["body"], first["headers"])
    # The deprecated header is still there for one release.
    assert signing.verify(secret, first["headers"]["x-cdp-signature"], first["body"])


def test_a_secret_from_before_standard_webhooks_works_written_in_standard_base64(
    brand, receiver, marketing, alice, django_capture_on_commit_callbacks
):
    """Older secrets are URL-safe base64 without padding (``whsec_a-b_…``): the same key,
    which a receiver's library reads once written in standard base64 (docs/api.md)."""
    services.forget_subscribers()
    legacy = "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode().rstrip("=")
    assert "-" in legacy or "_" in legacy
    Subscription.objects.create(brand=brand, url=receiver.url, events=["consent.changed"], secret=legacy)
    _grant_then_withdraw(alice, marketing, django_capture_on_commit_callbacks)

    raw = legacy.removeprefix("whsec_").replace("-", "+").replace("_", "/")
    standard = "whsec_" + raw + "=" * (-len(raw) % 4)
    for request in receiver.requests:
        Webhook(standard).verify(request["body"], request["headers"])

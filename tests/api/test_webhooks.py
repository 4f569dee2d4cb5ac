"""Webhooks: subscriptions over the API, signed deliveries, retries with backoff, dead
letters, redelivery from the admin, per-member sequence numbers, every event type."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from consent import services as consent_services
from members.identities import StoreRecord
from members.services import resolve_store_record
from privacy import rights
from privacy.models import DataSubjectRequest
from tests.segments.conftest import build, make_segment
from webhooks import services, signing
from webhooks.models import Delivery, Subscription

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _no_cached_subscribers():
    services.forget_subscribers()
    yield
    services.forget_subscribers()


@pytest.fixture
def subscribed(api, receiver, django_capture_on_commit_callbacks):
    response = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["consent.changed", "member.merged",
                                                                            "member.erased", "segment.built"]})  # fmt: skip
    assert response.status_code == 201, response.json()
    return response.json()


def withdraw(member, purpose, *, when=None, source="privacy_center"):
    return consent_services.record_consent(
        member=member, brand=purpose.brand, purpose=purpose, channel="sms", action="withdrawn",
        source_type=source, occurred_at=when,
    )  # fmt: skip


def test_subscription_api(api, receiver, other_api):
    created = api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["consent.changed"]})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [s["id"] for s in listed] == [body["id"]] and "secret" not in listed[0]
    assert other_api.get("/api/v1/webhooks/").json()["results"] == []
    assert other_api.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 404
    assert api.delete(f"/api/v1/webhooks/{body['id']}/").status_code == 204
    assert api.get("/api/v1/webhooks/").json()["results"] == []
    assert api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["nope"]}).status_code == 400
    assert api.post("/api/v1/webhooks/", {"url": "ftp://x", "events": ["consent.changed"]}).status_code == 400


def test_private_receivers_are_refused_in_production(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    for url in ("http://example.com/x", "https://127.0.0.1/x", "https://localhost/x", "https://10.0.0.1/x"):
        response = api.post("/api/v1/webhooks/", {"url": url, "events": ["consent.changed"]})
        assert response.status_code == 400, url


def test_withdrawal_is_delivered_signed_with_state_and_sequence(
    subscribed, receiver, marketing, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        consent_services.record_consent(member=alice, brand=marketing.brand, purpose=marketing, channel="sms",
                                        action="granted", source_type="store")  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(alice, marketing)
    assert len(receiver.requests) == 2
    first, second = receiver.payloads()
    assert second["type"] == "consent.changed" and second["member"] == alice.pk
    assert second["sequence"] == first["sequence"] + 1
    assert second["data"]["event"]["action"] == "withdrawn"
    assert second["data"]["event"]["source"] == "privacy_center"
    assert second["data"]["state"]["action"] == "withdrawn"
    assert second["data"]["memberships"] == [{"store": "lotus-tmall", "member_id": f"S{alice.pk}"}]
    request = receiver.requests[1]
    header = request["headers"]["x-cdp-signature"]
    assert signing.verify(subscribed["secret"], header, request["body"])
    assert not signing.verify(subscribed["secret"], header, request["body"] + b" ")
    assert not signing.verify("whsec_wrong", header, request["body"])
    assert not signing.verify(subscribed["secret"], header, request["body"], now=time.time() + 3600)
    assert request["headers"]["x-cdp-event"] == "consent.changed"
    assert Delivery.objects.filter(status="succeeded").count() == 2


def test_a_publishing_task_run_twice_delivers_once(subscribed, receiver, marketing, alice,
                                                  django_capture_on_commit_callbacks):  # fmt: skip
    """The broker redelivers a task whose worker was lost after it committed: the second
    run finds the first run's delivery (same event id) and makes no second one, nor takes
    a second sequence number."""
    from webhooks import tasks

    with django_capture_on_commit_callbacks(execute=True):
        recorded = withdraw(alice, marketing)
    (first,) = Delivery.objects.all()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.publish_event("consent.changed", recorded.event.pk) == 1  # the redelivered run
    (again,) = Delivery.objects.all()
    assert (again.pk, again.event_id, again.sequence) == (first.pk, first.event_id, first.sequence)
    assert len(receiver.requests) == 1


def test_other_brands_events_are_not_delivered(subscribed, receiver, other_marketing, olga,
                                               django_capture_on_commit_callbacks):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(olga, other_marketing)
    assert receiver.requests == [] and not Delivery.objects.exists()


def test_failing_receiver_is_retried_with_backoff_then_succeeds(
    subscribed, receiver, marketing, alice, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    receiver.script = [500, 503]
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(alice, marketing)
    delivery = Delivery.objects.get()
    assert delivery.status == "retrying" and delivery.attempts == 1 and delivery.last_status_code == 500
    assert dt.timedelta(seconds=25) < delivery.next_attempt_at - timezone.now() <= dt.timedelta(seconds=30)
    assert services.deliver(delivery.pk) is None  # not due yet: nothing sent
    assert len(receiver.requests) == 1
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.deliver(delivery.pk) == 60.0  # second failure: the delay doubles
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 3
    bodies = {r["body"] for r in receiver.requests}
    assert len(bodies) == 1  # the same bytes every time


def test_dead_letter_then_redeliver_from_the_admin(
    subscribed, receiver, marketing, alice, settings, client, superuser, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.script = [500, 500]
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(alice, marketing)
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    services.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 2
    client.force_login(superuser)
    assert client.get("/admin/webhooks/delivery/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}, follow=True
        )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 3


def test_unreachable_receiver_is_retried(api, marketing, alice, django_capture_on_commit_callbacks):
    api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:9/nothing", "events": ["consent.changed"]})
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(alice, marketing)
    delivery = Delivery.objects.get()
    assert delivery.status == "retrying" and delivery.last_status_code is None and delivery.last_error


def test_merge_erase_and_segment_events(subscribed, receiver, brand, tmall, jd, marketing,
                                        django_capture_on_commit_callbacks):  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        a = resolve_store_record(StoreRecord.clean(store=tmall, store_member_id="T1", phone="13800138000")).member
        resolve_store_record(StoreRecord.clean(store=jd, store_member_id="J1", email="b@example.com"))
    with django_capture_on_commit_callbacks(execute=True):
        resolve_store_record(StoreRecord.clean(store=jd, store_member_id="J1", phone="13800138000"))
    merged = [p for p in receiver.payloads() if p["type"] == "member.merged"]
    assert len(merged) == 1 and merged[0]["data"]["survivor"] == a.pk
    with django_capture_on_commit_callbacks(execute=True):
        rights.carry_out_deletion(DataSubjectRequest.objects.create(member=a, kind="deletion").pk)
    erased = [p for p in receiver.payloads() if p["type"] == "member.erased"]
    assert erased[0]["member"] == a.pk and erased[0]["sequence"] == merged[0]["sequence"] + 1
    segment = make_segment(brand, marketing, {"all": []}, slug="everyone")
    with django_capture_on_commit_callbacks(execute=True):
        build(segment)
    built = [p for p in receiver.payloads() if p["type"] == "segment.built"]
    assert built[0]["data"]["segment"] == "everyone" and built[0]["member"] is None


def test_deleted_subscription_stops_retries(subscribed, receiver, api, marketing, alice,
                                            django_capture_on_commit_callbacks):  # fmt: skip
    receiver.script = [500]
    with django_capture_on_commit_callbacks(execute=True):
        withdraw(alice, marketing)
    api.delete(f"/api/v1/webhooks/{subscribed['id']}/")
    delivery = Delivery.objects.get()
    assert delivery.status == "dead"
    Delivery.objects.filter(pk=delivery.pk).update(status="retrying", next_attempt_at=timezone.now())
    services.deliver(delivery.pk)
    assert len(receiver.requests) == 1
    assert Subscription.objects.get().is_active is False


def test_nothing_is_queued_when_nobody_listens(tmall, jd, monkeypatch, django_capture_on_commit_callbacks):
    from webhooks import tasks

    queued = []
    monkeypatch.setattr(tasks.publish_event, "delay", lambda *args: queued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        resolve_store_record(StoreRecord.clean(store=tmall, store_member_id="T1", phone="13800138000"))
        resolve_store_record(StoreRecord.clean(store=jd, store_member_id="J1", email="b@example.com"))
        resolve_store_record(StoreRecord.clean(store=jd, store_member_id="J1", phone="13800138000"))
    assert queued == [] and not Delivery.objects.exists()


def test_bulk_appended_consent_is_published_in_batches_only_to_subscribed_brands(
    api, receiver, marketing, other_marketing, monkeypatch, django_capture_on_commit_callbacks
):
    """An import announces its events once per chunk (consent_appended): a brand with a
    consent.changed subscriber gets one publishing task per PUBLISH_BATCH events, in
    order; other brands' events queue nothing."""
    from consent.signals import consent_appended
    from webhooks import receivers, tasks

    queued = []
    monkeypatch.setattr(tasks.publish_events, "delay", lambda *args: queued.append(args))
    monkeypatch.setattr(receivers, "PUBLISH_BATCH", 2)
    assert api.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["consent.changed"]}).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        for brand_id in (marketing.brand_id, other_marketing.brand_id):
            consent_appended.send(sender=None, brand_id=brand_id, event_ids=[5, 6, 7], source_type="import_job")
    assert queued == [("consent.changed", [5, 6]), ("consent.changed", [7])]

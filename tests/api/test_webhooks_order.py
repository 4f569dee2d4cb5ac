"""Webhooks keep per-member order (DESIGN.md ⚑): a delivery about a member to a
subscription is not attempted while an earlier one of the same pair is pending, being
sent or waiting to retry; once that one is delivered or dead-lettered, the next goes.
The receivers here apply deliveries in arrival order, as most platform connectors do."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from consent import services as consent_services
from webhooks import services, tasks
from webhooks.models import Delivery, DeliveryAttempt

from .conftest import member_of
from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(brand):
    """A receiver subscribed to consent changes of ``brand``; it fails the first delivery
    it gets (500) when a test scripts so, and accepts the others."""
    with Receiver() as r:
        services.create_subscription(brand=brand, url=r.url, events=["consent.changed", "segment.built"])
        services.forget_subscribers()  # ids repeat between tests: no cached answer of another test
        yield r
    services.forget_subscribers()


@pytest.fixture
def bob(tmall):
    return member_of(tmall, name="Bob", phone="+8613700137000", email="bob@example.com")


@pytest.fixture
def act(django_capture_on_commit_callbacks, marketing):
    """Record a consent choice of a member and run what it sets off (publishing, sending)."""

    def act(member, action: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            consent_services.record_consent(member=member, brand=marketing.brand, purpose=marketing, channel="sms",
                                            action=action, source_type="privacy_center")  # fmt: skip

    return act


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run beat's retry sweep and what it sets off."""

    def sweep() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return tasks.retry_due()

    return sweep


@pytest.fixture
def staff(client, superuser):
    """The admin, in English."""
    client.force_login(superuser)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def answered(receiver: Receiver) -> list[tuple[dict, int]]:
    """Each payload that reached the receiver, in arrival order, with the answer it got."""
    return list(zip(receiver.payloads(), [r["answered"] for r in receiver.requests], strict=True))


def arrivals(receiver: Receiver) -> list[tuple[int, str, int, int]]:
    """What consent changes reached the receiver, in arrival order: (member, action,
    sequence, answer)."""
    return [(p["member"], p["data"]["event"]["action"], p["sequence"], code) for p, code in answered(receiver)]


def applied_in_arrival_order(receiver: Receiver, member_id: int) -> str:
    """The consent a receiver ends with when it applies every accepted delivery as it comes."""
    accepted = [p for p, code in answered(receiver) if 200 <= code < 300 and p["member"] == member_id]
    return accepted[-1]["data"]["state"]["action"]


def due_now(delivery: Delivery) -> None:
    """Let time pass until the delivery's retry is due (and overdue for the sweep)."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(minutes=1))


def delivery_of(member, action: str) -> Delivery:
    return next(
        d
        for d in Delivery.objects.filter(member_id=member.pk)
        if json.loads(d.body)["data"]["event"]["action"] == action
    )


def test_a_withdrawal_waits_for_the_retried_grant_before_it(receiver, alice, act, sweep, staff):
    receiver.script = [500]  # the receiver fails the first delivery about alice
    act(alice, "granted")
    act(alice, "withdrawn")
    grant, withdrawal = delivery_of(alice, "granted"), delivery_of(alice, "withdrawn")
    assert (grant.status, withdrawal.status) == ("retrying", "pending")
    assert withdrawal.attempts == 0 and len(receiver.requests) == 1  # not attempted behind the grant
    page = staff.get(f"/admin/webhooks/delivery/{withdrawal.pk}/change/").content.decode()
    assert f"#{grant.pk} (sequence {grant.sequence})" in page

    # The withdrawal is overdue for the sweep, the grant's retry not yet due: nothing goes.
    Delivery.objects.filter(pk=withdrawal.pk).update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    assert services.deliver(withdrawal.pk) is None
    assert sweep() == 0 and len(receiver.requests) == 1

    due_now(grant)
    assert sweep() == 1  # the grant only; its success hands on to the withdrawal
    assert arrivals(receiver) == [
        (alice.pk, "granted", grant.sequence, 500),
        (alice.pk, "granted", grant.sequence, 200),
        (alice.pk, "withdrawn", withdrawal.sequence, 200),
    ]
    assert grant.sequence < withdrawal.sequence
    assert applied_in_arrival_order(receiver, alice.pk) == "withdrawn"
    grant_ok = DeliveryAttempt.objects.get(delivery=grant, status_code=200)
    first_withdrawal = DeliveryAttempt.objects.get(delivery=withdrawal)
    assert first_withdrawal.started_at >= grant_ok.started_at and first_withdrawal.pk > grant_ok.pk
    assert Delivery.objects.filter(status="succeeded").count() == 2


def test_another_member_is_not_held_up(receiver, alice, bob, act):
    receiver.script = [500]
    act(alice, "granted")
    act(bob, "withdrawn")
    act(alice, "withdrawn")
    assert arrivals(receiver) == [
        (alice.pk, "granted", delivery_of(alice, "granted").sequence, 500),
        (bob.pk, "withdrawn", delivery_of(bob, "withdrawn").sequence, 200),
    ]
    assert delivery_of(alice, "withdrawn").status == "pending"


def test_another_subscription_is_not_held_up(receiver, brand, alice, act):
    with Receiver() as healthy:
        services.create_subscription(brand=brand, url=healthy.url, events=["consent.changed"])
        receiver.script = [500]
        act(alice, "granted")
        act(alice, "withdrawn")
    assert [action for _member, action, _seq, _answer in arrivals(healthy)] == ["granted", "withdrawn"]
    assert [answer for *_rest, answer in arrivals(receiver)] == [500]


def test_a_dead_letter_lets_the_next_go(receiver, alice, act, sweep, settings, staff):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.script = [500, 500]
    act(alice, "granted")
    act(alice, "withdrawn")
    grant = delivery_of(alice, "granted")
    due_now(grant)
    sweep()
    grant.refresh_from_db()
    assert grant.status == "dead" and grant.attempts == 2
    assert [(action, answer) for _m, action, _s, answer in arrivals(receiver)] == [
        ("granted", 500), ("granted", 500), ("withdrawn", 200),
    ]  # fmt: skip
    assert delivery_of(alice, "withdrawn").status == "succeeded"
    page = staff.get("/admin/webhooks/delivery/?status__exact=dead").content.decode()
    assert f"/admin/webhooks/delivery/{grant.pk}/change/" in page


def test_admin_redelivery_keeps_the_attempt_history(
    receiver, alice, act, sweep, settings, staff, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.script = [500, 503]
    act(alice, "granted")
    grant = delivery_of(alice, "granted")
    due_now(grant)
    sweep()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [grant.pk]}, follow=True
        )
    assert "Queued 1 delivery again." in response.content.decode()
    grant.refresh_from_db()
    assert grant.status == "succeeded" and grant.attempts == 3 and grant.attempts_before_redelivery == 2
    history = list(DeliveryAttempt.objects.filter(delivery=grant).values_list("number", "status_code", "error"))
    assert history == [(1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 200, "")]
    page = staff.get(f"/admin/webhooks/delivery/{grant.pk}/change/").content.decode()
    assert "HTTP 500" in page and "HTTP 503" in page and "delivery attempts" in page.lower()
    chinese = staff.get(f"/admin/webhooks/delivery/{grant.pk}/change/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "投递尝试" in chinese.content.decode()


def test_a_redelivery_gets_a_fresh_set_of_attempts(receiver, alice, act, sweep, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.script = [500, 500, 500]
    act(alice, "granted")
    grant = delivery_of(alice, "granted")
    due_now(grant)
    sweep()
    assert services.redeliver([grant]) == (1, 0)
    grant.refresh_from_db()
    assert grant.status == "pending" and grant.attempts == 2 and grant.last_status_code == 500
    delay = services.deliver(grant.pk)  # the third attempt fails: the first of this round, so not dead
    grant.refresh_from_db()
    assert delay == settings.WEBHOOK_RETRY_BASE_SECONDS and grant.status == "retrying" and grant.attempts == 3


def test_redelivered_letters_go_in_sequence_order(receiver, alice, act, sweep, settings, staff,
                                                  django_capture_on_commit_callbacks):  # fmt: skip
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.script = [500, 500]  # the receiver is down for both
    act(alice, "granted")
    act(alice, "withdrawn")
    assert set(Delivery.objects.values_list("status", flat=True)) == {"dead"}
    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/admin/webhooks/delivery/", {"action": "redeliver",
                                                  "_selected_action": list(Delivery.objects.values_list("pk", flat=True))})  # fmt: skip
    assert [(action, answer) for _m, action, _s, answer in arrivals(receiver)] == [
        ("granted", 200), ("withdrawn", 200),
    ]  # fmt: skip


def test_redelivering_an_overtaken_letter_warns(receiver, alice, act, settings, staff,
                                                django_capture_on_commit_callbacks):  # fmt: skip
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    receiver.script = [500]
    act(alice, "granted")
    act(alice, "withdrawn")  # goes once the grant is dead
    grant = delivery_of(alice, "granted")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [grant.pk]}, follow=True
        )
    assert "older than a delivery about the same member that was already delivered" in response.content.decode()
    assert [action for _m, action, _s, _a in arrivals(receiver)] == ["granted", "withdrawn", "granted"]


def test_a_lost_worker_holds_the_line_until_the_sweep_takes_its_delivery_back(receiver, alice, act, sweep):
    act(alice, "granted")
    grant = delivery_of(alice, "granted")
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    # As if a worker died while sending the grant: "sending" since long ago, never finished.
    Delivery.objects.filter(pk=grant.pk).update(status="sending", last_attempt_at=long_ago, next_attempt_at=long_ago)
    act(alice, "withdrawn")
    assert len(receiver.requests) == 1  # the withdrawal did not overtake the grant
    assert sweep() == 1
    assert [action for _m, action, _s, _a in arrivals(receiver)] == ["granted", "granted", "withdrawn"]


def test_a_worker_whose_delivery_was_taken_back_does_not_report(receiver, alice, act, monkeypatch):
    """A worker so slow that the sweep took its delivery back as lost: its answer goes in
    the log, but the delivery stays with the worker that took it over."""

    def slow_post(url, body, headers):
        Delivery.objects.filter(pk=headers["X-CDP-Delivery"]).update(last_attempt_at=timezone.now())  # taken over
        return 200, ""

    monkeypatch.setattr(services, "_post", slow_post)
    act(alice, "granted")
    act(alice, "withdrawn")
    grant = delivery_of(alice, "granted")
    assert grant.status == "sending" and grant.attempts == 0
    assert list(grant.attempt_log.values_list("status_code", flat=True)) == [200]
    assert delivery_of(alice, "withdrawn").status == "pending"  # still behind the grant


def test_deliveries_without_a_member_are_not_ordered(receiver, brand, django_capture_on_commit_callbacks):
    receiver.script = [500]
    with django_capture_on_commit_callbacks(execute=True):
        services.publish("segment.built", brand_ids=[brand.pk], data={"build": 1})
    with django_capture_on_commit_callbacks(execute=True):
        services.publish("segment.built", brand_ids=[brand.pk], data={"build": 2})
    assert [(p["data"]["build"], code) for p, code in answered(receiver)] == [(1, 500), (2, 200)]


def claim_while(sql: str, params: list, delivery_pk: int) -> tuple[bool, bool]:
    """Claim a delivery in a thread while another PostgreSQL connection has run ``sql``
    in a transaction still open; then commit that one. Returns whether the claim waited
    for it, and the claim's outcome."""
    import threading

    import psycopg
    from django.db import connection

    from tests.workers import database_url

    claimed: list[bool] = []

    def claim() -> None:
        try:
            claimed.append(services._claim(delivery_pk))
        finally:
            connection.close()

    with psycopg.connect(database_url()) as other:
        other.execute(sql, params)
        worker = threading.Thread(target=claim)
        worker.start()
        worker.join(1.0)
        waited = worker.is_alive() and claimed == []
        other.commit()
    worker.join(10)
    return waited, claimed[0]


@pytest.fixture
def unsent(brand, alice):
    """A delivery about alice, and one about no member, made but not sent."""
    subscription, _secret = services.create_subscription(brand=brand, url="http://127.0.0.1:9/x",
                                                         events=["consent.changed", "segment.built"])  # fmt: skip
    return (
        Delivery.objects.create(subscription=subscription, event_type="consent.changed", member_id=alice.pk,
                                sequence=services.next_sequence(alice.pk), body="{}"),
        Delivery.objects.create(subscription=subscription, event_type="segment.built", body="{}"),
    )  # fmt: skip


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claims_about_a_member_take_turns_on_its_sequence_row(unsent, alice):
    """Two workers cannot both find a member's line free: a claim first locks the member's
    MemberSequence row (as numbering the member's events does) and waits for its turn."""
    about_alice, _ = unsent
    lock = "SELECT seq FROM webhooks_membersequence WHERE member_id = %s FOR UPDATE"
    assert claim_while(lock, [alice.pk], about_alice.pk) == (True, True)
    assert Delivery.objects.get(pk=about_alice.pk).status == "sending"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivery_claimed_meanwhile_is_not_claimed_again(unsent):
    """The task of a delivery runs twice at once (the broker redelivered it): the second
    claim waits for the first one's row and then finds it taken, also without a member."""
    for delivery in unsent:
        taken = "UPDATE webhooks_delivery SET status = 'sending', last_attempt_at = now() WHERE id = %s"
        assert claim_while(taken, [delivery.pk], delivery.pk) == (True, False), delivery.event_type

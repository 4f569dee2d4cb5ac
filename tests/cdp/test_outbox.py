"""No side effect is lost (issue 22 item 2; DESIGN.md ⚑ "Side effects go through the
outbox"). A change writes its side effects as outbox rows in its own transaction; they are
sent after commit, or wait while the broker is away and go when it is back; the caller
gets its 2xx either way. Here tasks run in-process (eager) or the broker is Celery's
in-memory one or a closed port; tests/cdp/test_outbox_worker.py repeats the outage
against Redis and a real worker."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest
from celery import shared_task
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from cdp import broker, health, outbox, queues
from cdp.celery import app
from cdp.enqueue import enqueue, enqueue_on_commit
from cdp.models import AuditLog, OutboxMessage
from privacy import rights
from tests.api.conftest import *  # noqa: F403 - the API tests' fixtures: api, marketing, alice
from tests.api.conftest import member_of
from tests.api.receiver import Receiver
from tests.conftest import see_every_brand
from tests.factories import UserFactory
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused
MEMORY = "memory://localhost/"
NOTE = "tests.cdp.test_outbox.note"
noted: list[str] = []


@shared_task(name=NOTE)
def note(text: str) -> str:
    """A side effect this file can watch."""
    noted.append(text)
    return text


@pytest.fixture(autouse=True)
def _fresh_relay():
    """Each test starts as a new process would: broker presumed up, no kept connection."""
    noted.clear()
    broker.breaker.reset()
    broker.drop_connection()
    webhooks.forget_subscribers()
    memory_queue()
    yield
    broker.breaker.reset()
    broker.drop_connection()
    webhooks.forget_subscribers()
    memory_queue()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """The test's transaction stands for the request's: what runs on commit runs at the
    end of the block (a test that commits for real cannot empty the append-only ledger
    on SQLite)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def subscribed(brand, receiver):
    webhooks.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
    webhooks.forget_subscribers()
    return receiver


@pytest.fixture
def broker_at(real_celery, monkeypatch):
    """Tasks go to a broker (not in-process); ``broker_at(url)`` points this process at
    another one, as a broker outage or its return would."""

    def point(url: str) -> None:
        monkeypatch.setattr(app.conf, "broker_url", url)
        broker.drop_connection()

    point(MEMORY)
    return point


def grant(api, external_id="e1", action="granted"):
    return api.post("/api/v1/consent-events/", {
        "external_id": external_id, "purpose": "marketing", "channel": "sms", "action": action,
        "occurred_at": "2026-03-01T10:00:00+08:00", "phone": "13800138000",
    })  # fmt: skip


def memory_queue() -> list:
    """Take every message from the in-memory broker's queues (a worker would: every queue
    of cdp.queues)."""
    messages = []
    with app.connection_for_read(MEMORY) as connection:
        for name in queues.QUEUES:
            queue = connection.SimpleQueue(name)
            while True:
                try:
                    message = queue.get(timeout=0.05)
                except queue.Empty:
                    break
                message.ack()
                messages.append(message)
            queue.close()
    return messages


def work_off_memory_queue(committed) -> list[str]:
    """A worker in this process: run the queued tasks, and the ones they queue, in order,
    each task's work committed before the next. Returns the task ids it ran."""
    ran = []
    while messages := memory_queue():
        for message in messages:
            args, kwargs, _embed = message.decode()
            with committed():
                app.tasks[message.headers["task"]].apply(args, kwargs, task_id=message.headers["id"])
            ran.append(message.headers["id"])
    return ran


# --- Tasks in-process (make demo, make test) -----------------------------------------------


def test_a_change_sends_its_side_effect_after_commit(api, marketing, alice, subscribed, committed):
    with committed():
        assert grant(api).status_code == 201
        assert subscribed.requests == []  # nothing before the commit

    assert [p["data"]["event"]["action"] for p in subscribed.payloads()] == ["granted"]
    rows = list(OutboxMessage.objects.order_by("pk"))
    assert [r.task for r in rows] == ["webhooks.tasks.publish_event", "webhooks.tasks.deliver"]
    assert all(r.sent_at is not None and r.attempts == 1 for r in rows)
    assert all(r.args == [] and r.kwargs == {} for r in rows)  # not kept once sent


def test_a_rolled_back_change_leaves_no_row_and_no_side_effect(brand, marketing, alice, subscribed, committed):
    from consent.services import record_consent

    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        record_consent(member=alice, brand=brand, purpose=marketing, channel="sms", action="granted",
                       source_type="store")  # fmt: skip
        raise RuntimeError("the change fails after its side effect was queued")

    assert not OutboxMessage.objects.exists()
    assert not Delivery.objects.exists() and subscribed.requests == []


def test_the_webhook_row_is_written_in_the_changes_own_transaction(brand, marketing, alice, subscribed, committed):
    """The receivers of ``consent_changed`` run inside the transaction that appends the
    event: before it commits, the outbox row is already there beside the event, so a crash
    between the commit and any callback cannot lose the webhook."""
    from consent.models import ConsentEvent
    from consent.services import record_consent

    with committed(), transaction.atomic():
        recorded = record_consent(member=alice, brand=brand, purpose=marketing, channel="sms", action="granted",
                                  source_type="store")  # fmt: skip
        (row,) = OutboxMessage.objects.filter(task="webhooks.tasks.publish_event")
        assert row.args[1] == recorded.event.pk and row.sent_at is None
        assert ConsentEvent.objects.filter(pk=recorded.event.pk).exists()

    assert [p["data"]["event"]["action"] for p in subscribed.payloads()] == ["granted"]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_drops_only_its_own_side_effects():
    with transaction.atomic():
        enqueue(NOTE, "kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_on_commit(NOTE, "dropped")
            raise RuntimeError
        assert noted == []  # nothing runs before the commit

    assert noted == ["kept"]
    (row,) = OutboxMessage.objects.all()
    assert row.task == NOTE and row.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_side_effect_goes_at_once():
    enqueue(NOTE, "now")
    assert noted == ["now"] and OutboxMessage.objects.get().sent_at is not None


def test_enqueue_waits_for_the_transaction_its_caller_opened(committed):
    """``enqueue`` inside a service's transaction no longer sends before the commit; the
    test's own wrapping transaction does not count (a view runs in autocommit)."""
    enqueue(NOTE, "at once")
    assert noted == ["at once"]
    with committed():
        with transaction.atomic():
            enqueue(NOTE, "after commit")
        assert noted == ["at once"]
    assert noted == ["at once", "after commit"]


def test_a_misspelt_task_fails_where_it_is_queued():
    with pytest.raises(ImportError):
        enqueue("webhooks.tasks.no_such_task", 1)
    assert not OutboxMessage.objects.exists()


def test_the_erasure_receipt_leaves_no_address_in_the_outbox(tmall, committed):
    shopper = member_of(tmall, name="小花", phone="+8613900139000", email="xiaohua@example.com")

    with committed():
        request = rights.request_deletion(member=shopper, account=None)

    request.refresh_from_db()
    assert request.status == "completed"
    assert any(m.to == ["xiaohua@example.com"] for m in mail.outbox)
    tasks = set(OutboxMessage.objects.values_list("task", flat=True))
    assert {"privacy.tasks.erase_member_data", "privacy.tasks.send_erasure_receipt"} <= tasks
    stored = json.dumps(list(OutboxMessage.objects.values("args", "kwargs", "last_error")), ensure_ascii=False)
    assert "xiaohua" not in stored and "13900139000" not in stored


# --- The broker away ----------------------------------------------------------------------


def test_broker_down_the_change_commits_and_its_side_effect_waits_until_it_is_back(
    api, marketing, alice, subscribed, broker_at, committed
):
    broker_at(CLOSED)
    started = time.monotonic()
    with committed():
        response = grant(api)
    elapsed = time.monotonic() - started

    assert response.status_code == 201  # the consent is recorded
    assert elapsed < 2  # the refused broker cost milliseconds (test_a_refused_send_costs_milliseconds)
    waiting = OutboxMessage.objects.get()
    assert (waiting.task, waiting.sent_at, waiting.attempts) == ("webhooks.tasks.publish_event", None, 1)
    assert "Connection refused" in waiting.last_error or "111" in waiting.last_error
    assert waiting.available_at >= waiting.created_at + dt.timedelta(seconds=0.5)  # backing off
    assert subscribed.requests == []

    broker_at(MEMORY)  # the broker is back
    call_command("relay_outbox", "--now")

    waiting.refresh_from_db()
    assert waiting.sent_at is not None and waiting.args == []
    ran = work_off_memory_queue(committed)
    assert ran[0] == f"outbox-{waiting.pk}"  # the task id names the row
    assert [p["data"]["event"]["action"] for p in subscribed.payloads()] == ["granted"]
    assert not outbox.waiting().exists()


def test_a_refused_send_costs_milliseconds_and_then_nothing(broker_at):
    broker_at(CLOSED)
    costs = []
    for n in range(3):
        started = time.perf_counter()
        outbox.relay_one(OutboxMessage.objects.create(task=NOTE, args=[f"{n}"]))
        costs.append(time.perf_counter() - started)

    rows = list(OutboxMessage.objects.order_by("pk"))
    assert [r.attempts for r in rows] == [1, 0, 0]  # after one failure the others do not try
    assert all(r.sent_at is None for r in rows)
    assert costs[0] < 0.5 and max(costs[1:]) < 0.05


def test_an_unanswering_broker_costs_at_most_the_publish_timeout(broker_at, settings):
    settings.OUTBOX_PUBLISH_TIMEOUT_MS = 200
    server = socket.create_server(("127.0.0.1", 0), backlog=64)  # accepts, never answers
    try:
        broker_at(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
        started = time.perf_counter()
        assert outbox.relay_one(OutboxMessage.objects.create(task=NOTE, args=["x"])) is False
        elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert 0.15 < elapsed < 1.0
    assert OutboxMessage.objects.get().sent_at is None


def test_retries_back_off_doubling_with_jitter_up_to_the_maximum(settings):
    settings.OUTBOX_RETRY_MAX_SECONDS = 60
    for attempts, low, high in [(1, 0.5, 1), (2, 1, 2), (3, 2, 4), (6, 16, 32), (7, 30, 60), (30, 30, 60)]:
        delays = [outbox.backoff_seconds(attempts) for _ in range(50)]
        assert low <= min(delays) and max(delays) <= high, attempts
    assert len({outbox.backoff_seconds(5) for _ in range(10)}) > 1  # jittered


def test_a_row_backing_off_waits_for_its_time(broker_at):
    broker_at(CLOSED)
    row = OutboxMessage.objects.create(task=NOTE, args=["x"])
    assert outbox.relay_due().broker_down

    broker_at(MEMORY)
    assert outbox.relay_due().sent == 0  # not due yet
    OutboxMessage.objects.filter(pk=row.pk).update(available_at=timezone.now())
    assert outbox.relay_due().sent == 1
    row.refresh_from_db()
    assert (row.attempts, row.last_error) == (2, "")


def test_a_relay_stops_at_the_first_broker_failure_and_frees_the_rest(broker_at):
    broker_at(CLOSED)
    rows = [OutboxMessage.objects.create(task=NOTE, args=[str(n)]) for n in range(5)]

    relayed = outbox.relay_due()

    assert (relayed.sent, relayed.failed, relayed.broker_down) == (0, 1, True)
    untried = OutboxMessage.objects.filter(pk__in=[r.pk for r in rows[1:]])
    assert set(untried.values_list("attempts", "claimed_until")) == {(0, None)}  # free for the next run


def test_a_row_held_by_one_relay_is_not_sent_by_another(broker_at):
    row = OutboxMessage.objects.create(task=NOTE, args=["x"])
    assert outbox._claim([row.pk], timezone.now())  # relay A is sending it

    assert outbox.relay_due().sent == 0  # relay B leaves it
    assert outbox.retry_now([row.pk]).sent == 0  # so does staff's "send now"
    assert memory_queue() == []

    # Relay A died mid-send: its hold runs out and the row goes (once more: at least once).
    OutboxMessage.objects.filter(pk=row.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    assert outbox.relay_due().sent == 1
    assert [m.headers["id"] for m in memory_queue()] == [f"outbox-{row.pk}"]


def test_a_countdown_becomes_the_messages_eta(broker_at, committed):
    with committed():
        enqueue(NOTE, "later", countdown=30)

    row = OutboxMessage.objects.get()
    assert row.sent_at is not None  # handed over at once; the broker holds it until then
    (message,) = memory_queue()
    eta = dt.datetime.fromisoformat(message.headers["eta"])
    assert eta == row.created_at + dt.timedelta(seconds=30) == row.eta


def test_message_id_reads_the_row_back():
    assert outbox.message_id("outbox-42") == 42
    assert outbox.message_id("3f1c…") is None and outbox.message_id(None) is None


def test_old_sent_rows_are_pruned_waiting_ones_never(settings):
    settings.OUTBOX_KEEP_SENT_DAYS = 7
    now = timezone.now()
    old = OutboxMessage.objects.create(task=NOTE, sent_at=now - dt.timedelta(days=8))
    recent = OutboxMessage.objects.create(task=NOTE, sent_at=now - dt.timedelta(days=6))
    stuck = OutboxMessage.objects.create(
        task=NOTE, args=["x"], created_at=now - dt.timedelta(days=30), available_at=now + dt.timedelta(minutes=1)
    )

    call_command("relay_outbox", "--prune", "--once", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, stuck.pk}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


def test_relay_outbox_command_fails_while_the_broker_is_down(broker_at):
    broker_at(CLOSED)
    OutboxMessage.objects.create(task=NOTE, args=["x"])
    with pytest.raises(CommandError, match="unreachable"):
        call_command("relay_outbox")
    broker_at(MEMORY)
    call_command("relay_outbox", "--now")
    assert not outbox.waiting().exists()


def test_beat_relays_every_few_seconds_and_prunes_hourly(broker_at):
    from unittest import mock

    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from cdp.tasks import relay_outbox

    with mock.patch("django_celery_beat.schedulers.close_old_connections"):  # see tests/segments/test_beat.py
        DatabaseScheduler(app=app, lazy=False)  # what `celery beat` does on start

    relay = PeriodicTask.objects.get(name="outbox-relay")
    assert relay.task == "cdp.tasks.relay_outbox" and relay.interval.every <= 10
    assert relay.expire_seconds == relay.interval.every  # a run that waited too long is dropped, not piled up
    assert PeriodicTask.objects.get(name="outbox-prune").task == "cdp.tasks.prune_outbox"
    OutboxMessage.objects.create(task=NOTE, args=["x"])
    assert relay_outbox() == 1


# --- Watching it: /healthz and the admin ---------------------------------------------------


def test_healthz_reports_every_part(client):
    body = client.get(reverse("healthz")).json()
    assert body == {
        "status": "ok", "database": body["database"], "cache": body["cache"], "broker": "in-process",
        "outbox": {"waiting": 0, "oldest_waiting_seconds": None}, "degraded": [],
    }  # fmt: skip


def test_healthz_reports_a_down_broker_and_the_oldest_waiting_row(client, broker_at):
    broker_at(CLOSED)
    OutboxMessage.objects.create(task=NOTE, created_at=timezone.now() - dt.timedelta(minutes=2))
    OutboxMessage.objects.create(task=NOTE)

    response = client.get(reverse("healthz"))

    assert response.status_code == 200  # degraded, not down: the site works without the broker
    body = response.json()
    assert (body["status"], body["broker"], body["degraded"]) == ("degraded", "unreachable", ["broker", "outbox"])
    assert body["outbox"]["waiting"] == 2 and 120 <= body["outbox"]["oldest_waiting_seconds"] < 130


def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    def down():
        raise DatabaseError("connection refused")

    monkeypatch.setattr(health, "database", down)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"status": "error", "error": "DatabaseError", "degraded": ["database"]}


def test_admin_shows_rows_waiting_longer_than_a_minute_and_sends_them(client, superuser, broker_at):
    late = OutboxMessage.objects.create(task=NOTE, args=["late"], created_at=timezone.now() - dt.timedelta(minutes=5))
    fresh = OutboxMessage.objects.create(task=NOTE, args=["fresh"])
    OutboxMessage.objects.create(task=NOTE, sent_at=timezone.now())
    client.force_login(superuser)
    changelist = reverse("admin:cdp_outboxmessage_changelist")

    page = client.get(changelist, {"state": "late"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "1 side effect has been waiting longer than a minute" in page
    assert f"{changelist}{late.pk}/change/" in page and "Late" in page
    assert f"{changelist}{fresh.pk}/change/" not in page
    assert client.get(reverse("admin:cdp_outboxmessage_change", args=[late.pk])).status_code == 200

    response = client.post(
        changelist, {"action": "retry_now", "_selected_action": [late.pk]}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert "Sent 1 message." in response.content.decode()
    late.refresh_from_db()
    assert late.sent_at is not None and [m.headers["id"] for m in memory_queue()] == [f"outbox-{late.pk}"]
    assert AuditLog.objects.filter(action="outbox.retried", actor_user=superuser).exists()


def test_staff_who_may_only_look_cannot_send(client):
    OutboxMessage.objects.create(task=NOTE, args=["x"])
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_outboxmessage"))
    see_every_brand(viewer)
    client.force_login(viewer)
    page = client.get(reverse("admin:cdp_outboxmessage_changelist")).content.decode()
    assert NOTE in page and "retry_now" not in page

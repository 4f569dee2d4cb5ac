"""A push is answered once stored and applied after: in arrival order, one bad event
never holds up the store's others, failed events are applied again from the admin, and
what a dead worker left waiting is applied by beat. The last test runs the real path:
gunicorn is not needed, but the broker and a real ``celery worker`` are."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent.models import ConsentEvent, ConsentState
from imports.models import PlatformEvent
from imports.platform_events import service
from members.models import StoreMembership
from tests.workers import start_worker, stop_worker, wait_for

from .conftest import CHINA, tmall_push

JOIN, UNBIND = "taobao_crm_MemberJoin", "taobao_crm_MemberUnbind"


def _at(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _join(client, omid: str, msg_id: str, *, apply: bool, at: dt.datetime | None = None, mobile: str = ""):
    content = {"omid": omid, "mobile": mobile, "join_time": _at(at or timezone.now() - dt.timedelta(minutes=5))}
    return tmall_push(client, JOIN, content, msg_id=msg_id, apply=apply)


@pytest.mark.django_db
def test_a_join_and_its_unbind_waiting_together_are_applied_in_arrival_order(client, tmall_connection):
    joined = _join(client, "OM-1", "m-1", apply=False)
    unbound = tmall_push(client, UNBIND, {"omid": "OM-1", "unbind_time": _at(timezone.now())}, msg_id="m-2",
                         apply=False)  # fmt: skip
    retried = _join(client, "OM-1", "m-1", apply=False)

    assert [r.json()["results"][0]["outcome"] for r in (joined, unbound, retried)] == ["pending"] * 3
    assert retried.json()["results"][0]["duplicate"] is True
    assert not StoreMembership.objects.exists()  # nothing applied before the worker

    assert service.apply_waiting(tmall_connection.pk) == 2

    membership = StoreMembership.objects.get(store_member_id="OM-1")
    assert membership.left_at is not None
    assert ConsentState.objects.get(purpose__code="membership").action == "withdrawn"
    assert list(PlatformEvent.objects.order_by("id").values_list("outcome", flat=True)) == ["applied", "applied"]


@pytest.mark.django_db
def test_a_push_that_could_not_apply_is_refused_before_anything_is_stored(client, tmall_connection):
    long_ago = timezone.now() - dt.timedelta(days=3650)  # before any version of the agreement

    too_old = _join(client, "OM-1", "m-1", apply=False, at=long_ago)
    bad_phone = _join(client, "OM-2", "m-2", apply=False, mobile="12")

    assert too_old.status_code == 400 and "older than any version" in too_old.json()["detail"]
    assert bad_phone.status_code == 400 and bad_phone.json()["errors"][0]["field"] == "phone"
    assert not PlatformEvent.objects.exists()


@pytest.mark.django_db
def test_a_failing_event_does_not_hold_up_the_next_and_is_applied_again_from_the_admin(
    client, tmall_connection, monkeypatch, django_capture_on_commit_callbacks
):
    real = service.resolve_store_record
    calls = {"n": 0}

    def breaks_once(record):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug met once")
        return real(record)

    monkeypatch.setattr(service, "resolve_store_record", breaks_once)
    _join(client, "OM-1", "m-1", apply=False)
    _join(client, "OM-2", "m-2", apply=False)

    assert service.apply_waiting(tmall_connection.pk) == 2
    failed, applied = PlatformEvent.objects.order_by("id")
    assert (failed.outcome, failed.detail) == ("failed", "could not be applied (RuntimeError); see the logs")
    assert failed.values["store_member_id"] == "OM-1"  # kept to be applied again
    assert applied.outcome == "applied" and StoreMembership.objects.filter(store_member_id="OM-2").exists()

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-123"))
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            reverse("admin:imports_platformevent_changelist"),
            {"action": "apply_again", "_selected_action": [failed.pk]},
            follow=True,
        )
    assert page.status_code == 200 and "已将 1 个失败事件重新排队处理。" in page.content.decode()
    failed.refresh_from_db()
    assert (failed.outcome, failed.values) == ("applied", {})
    assert StoreMembership.objects.filter(store_member_id="OM-1").exists()
    assert AuditLog.objects.filter(action="platform.event_retried", object_id=str(failed.pk)).exists()


@pytest.mark.django_db
def test_events_a_dead_worker_left_waiting_are_applied_by_beat(client, tmall_connection):
    _join(client, "OM-1", "m-1", apply=False)
    _join(client, "OM-2", "m-2", apply=False)
    PlatformEvent.objects.filter(event_id="m-1").update(received_at=timezone.now() - dt.timedelta(minutes=5))

    # Only the connection matters: what waits behind the stalled event goes with it.
    assert service.apply_stalled() == 2
    assert service.apply_stalled() == 0
    assert set(PlatformEvent.objects.values_list("outcome", flat=True)) == {"applied"}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_what_the_answer_stored(client, real_celery, tmall_connection):
    worker = start_worker()
    try:
        # ``apply=False``: the test runs no commit callbacks itself; the outbox sends the
        # task to the broker when the request commits, and the worker applies.
        answers = [_join(client, f"OM-{i}", f"m-{i}", apply=False, mobile=f"1380013800{i}") for i in range(3)]
        unbind = tmall_push(client, UNBIND, {"omid": "OM-0", "unbind_time": _at(timezone.now())}, msg_id="m-9",
                            apply=False)  # fmt: skip
        wait_for(lambda: not PlatformEvent.objects.filter(outcome="pending").exists(), 60, "the events applied")
    finally:
        stop_worker(worker)

    assert all(a.json()["results"][0]["outcome"] == "pending" for a in [*answers, unbind])
    assert set(PlatformEvent.objects.values_list("outcome", flat=True)) == {"applied"}
    assert StoreMembership.objects.filter(left_at__isnull=True).count() == 2
    assert ConsentEvent.objects.filter(action="withdrawn").count() == 1

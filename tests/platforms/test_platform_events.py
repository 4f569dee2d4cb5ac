"""Members pushed by the platforms (入会): signed pushes join, update and end store
memberships; forged or stale pushes change nothing; the same push twice applies once.

A push is answered once its events are stored (``pending``); the worker applies them
after the commit (the push helpers of conftest run it, as a worker would, unless told
``apply=False``), and the stored event says what became of each."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent import services as consent_services
from consent.models import ConsentEvent, ConsentState
from consent.queries import can_contact
from imports.models import PlatformEvent
from members.models import Identity, Member, StoreMembership

from .conftest import douyin_push, generic_push, tmall_push, wechat_push

pytestmark = pytest.mark.django_db

JOIN = "taobao_crm_MemberJoin"


def _join_content(**extra):
    joined = timezone.now() - dt.timedelta(minutes=5)
    content = {"omid": "OM-1001", "ouid": "OU-77", "mobile": "13800138000", "grade_name": "金卡", "points": 120,
               "join_time": joined.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    content.update(extra)
    return content


def stored(event_id):
    row = PlatformEvent.objects.get(event_id=event_id)
    return row.outcome, row.detail


def test_a_tmall_join_makes_a_member_and_records_the_agreement_but_no_marketing(
    client, tmall_connection, marketing, agreement
):
    response = tmall_push(client, JOIN, _join_content())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["results"] == [
        {"event_id": "m-1", "kind": "joined", "outcome": "pending", "duplicate": False, "detail": ""}
    ]  # fmt: skip
    row = PlatformEvent.objects.get()
    assert (row.outcome, row.detail) == ("applied", f"joined; membership agreement v{agreement.version} recorded")
    assert row.applied_at is not None and row.values == {}  # the phone number now lives in the profile only
    membership = StoreMembership.objects.get(store=tmall_connection.store, store_member_id="OM-1001")
    assert (membership.tier, membership.points, membership.left_at) == ("金卡", 120, None)
    member = membership.member
    assert member.phone == "+8613800138000"
    assert Identity.objects.filter(member=member, kind="platform_user", value="tmall:OU-77").exists()
    (event,) = ConsentEvent.objects.filter(member=member)
    assert (event.purpose.code, event.action, event.channel) == ("membership", "granted", "")
    assert event.notice_id == agreement.pk and event.store_id == tmall_connection.store_id
    assert event.source_type == "store" and event.source_ref.startswith("platform-event:")
    assert event.evidence["platform_event_id"] == "m-1"
    # Joining never implies marketing consent: it needs its own answer.
    assert not ConsentState.objects.filter(member=member, purpose=marketing).exists()
    assert not can_contact(member, tmall_connection.store.brand, marketing, "sms").allowed


def test_the_same_push_twice_is_applied_once(client, tmall_connection):
    first = tmall_push(client, JOIN, _join_content())
    again = tmall_push(client, JOIN, _join_content())

    assert first.status_code == again.status_code == 200
    # The retry is told what the first push became.
    assert again.json()["results"][0]["duplicate"] is True
    assert (again.json()["results"][0]["outcome"], again.json()["results"][0]["detail"]) == stored("m-1")
    assert stored("m-1")[0] == "applied"
    assert PlatformEvent.objects.count() == 1
    assert ConsentEvent.objects.count() == 1
    assert Member.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "someone-elses-secret"}, "does not match"),
        ({"signed_at": timezone.now() - dt.timedelta(minutes=20)}, "from the server's clock"),
        ({"app_key": "another-app"}, "not this store's app"),
    ],
)
def test_a_forged_or_stale_push_is_refused_with_401_and_changes_nothing(client, tmall_connection, change, reason):
    response = tmall_push(client, JOIN, _join_content(), **change)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert not Member.objects.exists() and not PlatformEvent.objects.exists() and not ConsentEvent.objects.exists()


def test_a_push_without_a_signature_or_to_an_unknown_store_is_refused(client, tmall_connection):
    unsigned = client.post("/api/v1/platform-events/lotus-tmall/", b"{}", content_type="application/json")
    unknown = client.post("/api/v1/platform-events/nobody/", b"{}", content_type="application/json")

    assert unsigned.status_code == 401 and "no 'sign'" in unsigned.json()["detail"]
    assert unknown.status_code == 404
    tmall_connection.is_active = False
    tmall_connection.save()
    assert tmall_push(client, JOIN, _join_content()).status_code == 404


def test_a_signed_push_with_an_invalid_phone_names_the_field_and_writes_nothing(client, tmall_connection):
    response = tmall_push(client, JOIN, _join_content(mobile="12345"))

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "phone"
    assert not Member.objects.exists() and not PlatformEvent.objects.exists()


def test_a_masked_phone_is_no_phone(client, tmall_connection):
    response = tmall_push(client, JOIN, _join_content(mobile="138****8000"))

    assert response.status_code == 200
    member = StoreMembership.objects.get(store_member_id="OM-1001").member
    assert member.phone == ""


def test_an_update_changes_the_membership_and_records_no_consent(client, tmall_connection):
    tmall_push(client, JOIN, _join_content())
    now = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    response = tmall_push(
        client, "taobao_crm_MemberUpdate", {"omid": "OM-1001", "grade_name": "钻石卡", "points": 900, "modified": now},
        msg_id="m-2",
    )  # fmt: skip

    assert response.status_code == 200 and stored("m-2") == ("applied", "membership updated")
    membership = StoreMembership.objects.get(store_member_id="OM-1001")
    assert (membership.tier, membership.points) == ("钻石卡", 900)
    assert ConsentEvent.objects.count() == 1


def test_unbinding_ends_the_membership_and_withdraws_what_rested_on_it(
    client, tmall_connection, marketing, django_capture_on_commit_callbacks
):
    from tests.api.receiver import Receiver
    from webhooks import services as webhook_services
    from webhooks.models import Delivery

    tmall_push(client, JOIN, _join_content())
    member = Member.objects.get()
    brand = tmall_connection.store.brand
    earlier = timezone.now() - dt.timedelta(minutes=2)
    # The store recorded an SMS grant; e-mail consent came through the API, confirmed.
    consent_services.record_consent(member=member, brand=brand, purpose=marketing, channel="sms", action="granted",
                                    source_type="store", store=tmall_connection.store, occurred_at=earlier)  # fmt: skip
    consent_services.record_consent(member=member, brand=brand, purpose=marketing, channel="email",
                                    action="confirmed", source_type="api_key", occurred_at=earlier,
                                    confirmation={"confirmed_at": earlier.isoformat(), "ip": "203.0.113.9",
                                                  "message_id": "<c1@mail>"})  # fmt: skip
    with Receiver() as receiver:
        with django_capture_on_commit_callbacks(execute=True):
            webhook_services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        unbound_at = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
        with django_capture_on_commit_callbacks(execute=True):
            response = tmall_push(
                client, "taobao_crm_MemberUnbind", {"omid": "OM-1001", "unbind_time": unbound_at}, msg_id="m-3"
            )
        arrived = [payload["data"]["event"] for payload in receiver.payloads()]

    assert response.status_code == 200
    assert stored("m-3") == ("applied", "membership ended; 2 consent(s) withdrawn")
    assert StoreMembership.objects.get(store_member_id="OM-1001").left_at is not None
    states = {(s.purpose.code, s.channel): s.action for s in ConsentState.objects.filter(member=member)}
    assert states == {("membership", ""): "withdrawn", ("marketing", "sms"): "withdrawn",
                      ("marketing", "email"): "confirmed"}  # fmt: skip
    withdrawals = ConsentEvent.objects.filter(member=member, action="withdrawn")
    assert {e.source_ref for e in withdrawals} == {f"platform-event:{PlatformEvent.objects.get(event_id='m-3').pk}"}
    # The receiver got both withdrawals, and confirmed them.
    assert [(e["purpose"], e["channel"], e["action"]) for e in arrived] == [
        ("membership", "", "withdrawn"), ("marketing", "sms", "withdrawn")
    ]  # fmt: skip
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_unbinding_a_membership_nobody_knew_is_acknowledged_and_ignored(client, tmall_connection):
    unbound_at = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    response = tmall_push(client, "taobao_crm_MemberUnbind", {"omid": "OM-404", "unbind_time": unbound_at})
    again = tmall_push(client, "taobao_crm_MemberUnbind", {"omid": "OM-404", "unbind_time": unbound_at})

    assert response.status_code == 200
    assert stored("m-1") == ("ignored", "no membership with this id at the store: nothing to end")
    assert again.json()["results"][0]["outcome"] == "ignored"


def test_joining_again_after_unbinding_reopens_the_membership(client, tmall_connection):
    tmall_push(client, JOIN, _join_content())
    now = timezone.now().astimezone(dt.timezone(dt.timedelta(hours=8)))
    tmall_push(client, "taobao_crm_MemberUnbind", {"omid": "OM-1001", "unbind_time": now.strftime("%Y-%m-%d %H:%M:%S")},
               msg_id="m-2")  # fmt: skip
    rejoin = _join_content(join_time=(now + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S"))
    tmall_push(client, JOIN, rejoin, msg_id="m-3")

    assert StoreMembership.objects.get(store_member_id="OM-1001").left_at is None
    state = ConsentState.objects.get(purpose__code="membership")
    assert state.action == "granted"


def test_a_join_before_the_configured_notice_records_the_version_shown_then(client, tmall_connection, agreement):
    long_ago = timezone.now() - dt.timedelta(days=100)
    response = tmall_push(client, JOIN, _join_content(join_time=long_ago.astimezone(
        dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")))  # fmt: skip

    assert response.status_code == 200
    event = ConsentEvent.objects.get()
    assert event.notice.version == agreement.version - 1


def test_a_douyin_push_of_several_messages_is_applied_whole_or_not_at_all(client, douyin_connection):
    at = int(timezone.now().timestamp())
    good = ("member_join", "dy-1", {"open_id": "ou_1", "mobile": "13900139000", "event_time": at})
    bad = ("member_join", "dy-2", {"open_id": "ou_2", "mobile": "bad", "event_time": at})
    other = ("order_created", "dy-3", {"order_id": "1"})

    refused = douyin_push(client, [good, bad])
    accepted = douyin_push(client, [good, other])

    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "phone"
    assert accepted.status_code == 200
    assert accepted.json()["skipped"] == ["order_created"]
    assert [r["event_id"] for r in accepted.json()["results"]] == ["dy-1"]
    assert StoreMembership.objects.filter(store=douyin_connection.store).count() == 1
    assert douyin_push(client, [good], secret="wrong").status_code == 401


def test_a_wechat_card_activation_joins_and_deleting_the_card_unbinds(client, wechat_connection):
    created = int(timezone.now().timestamp()) - 60
    activation = {"ToUserName": "gh_lotus", "FromUserName": "oWx_1", "CreateTime": created, "MsgType": "event",
                  "Event": "submit_membercard_user_info", "CardId": "pCard", "UserCardCode": "CARD-9",
                  "UnionId": "o6_bmasdasdsad6_2sgVt7hMZOPfL"}  # fmt: skip
    deleted = {**activation, "Event": "user_del_card", "CreateTime": created + 30}

    joined = wechat_push(client, activation)
    again = wechat_push(client, activation)
    ended = wechat_push(client, deleted)
    forged = wechat_push(client, activation, token="guess")

    assert joined.status_code == again.status_code == ended.status_code == 200
    assert again.json()["results"][0]["duplicate"] is True
    assert forged.status_code == 401
    membership = StoreMembership.objects.get(store=wechat_connection.store, store_member_id="CARD-9")
    assert membership.left_at is not None
    assert Identity.objects.filter(kind="wechat_unionid", member=membership.member).exists()
    # No open id is kept in the events table.
    assert not PlatformEvent.objects.filter(event_id__contains="oWx_1").exists()


def test_any_other_platform_pushes_standard_webhooks(client, generic_connection):
    message = {"type": "membership.joined", "occurred_at": timezone.now().isoformat(),
               "member": {"member_id": "XHS-1", "phone": "+7 912 345-67-89", "tier": "VIP"}}  # fmt: skip

    response = generic_push(client, message)
    forged = generic_push(client, message, msg_id="msg_2", secret="whsec_" + "A" * 44)
    naive = generic_push(client, {**message, "occurred_at": "2026-11-11T20:00:00"}, msg_id="msg_3")

    assert response.status_code == 200, response.content
    assert StoreMembership.objects.get(store_member_id="XHS-1").member.phone == "+79123456789"
    assert forged.status_code == 401
    assert naive.status_code == 400 and naive.json()["errors"][0]["field"] == "body.occurred_at"


def test_an_oversized_push_is_refused_before_it_is_read(client, tmall_connection, settings):
    settings.API_MAX_REQUEST_BYTES = 100
    response = tmall_push(client, JOIN, _join_content(name="x" * 200))

    assert response.status_code == 413


def test_a_join_is_answered_in_a_few_queries_and_applied_in_a_bounded_number(
    client, tmall_connection, django_assert_max_num_queries
):
    from imports.platform_events import service

    with django_assert_max_num_queries(6):  # the connection, and the event with its savepoint
        response = tmall_push(client, JOIN, _join_content(), apply=False)
    assert response.status_code == 200 and stored("m-1")[0] == "pending"

    with django_assert_max_num_queries(27):  # the lock, the next event, the membership, the ledger, audit
        assert service.apply_waiting(tmall_connection.pk) == 1
    assert stored("m-1")[0] == "applied"

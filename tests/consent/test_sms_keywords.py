"""SMS replies: 退订, TD, T, STOP or UNSUBSCRIBE withdraw SMS marketing for the person who
owns the number; anything else, or an unknown number, changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent import optin, services
from consent.models import Action, ConsentEvent, Purpose
from consent.queries import can_contact
from consent.services import ConsentError
from members.models import Identity, Member
from tests.factories import BrandFactory, MemberFactory


@pytest.fixture
def sms_subscriber(mail_subscriber, brand, marketing_purpose):
    services.record_consent(
        member=mail_subscriber,
        brand=brand,
        purpose=marketing_purpose,
        channel="sms",
        action="granted",
        source_type="store",
    )
    assert can_contact(mail_subscriber, brand, marketing_purpose, "sms").allowed
    return mail_subscriber


def national(phone: str) -> str:
    return phone.removeprefix("+86")


@pytest.mark.parametrize("text", ["TD", "td", " T ", "t", "退订", "STOP", "Stop", "unsubscribe", "ＴＤ", "退订\n"])
def test_each_keyword_withdraws_sms_marketing(sms_subscriber, brand, marketing_purpose, text):
    events = optin.handle_sms_reply(brand=brand, phone=national(sms_subscriber.phone), text=text)
    (event,) = events
    assert event.action == Action.WITHDRAWN
    assert event.channel == "sms"
    assert event.source_type == "sms_keyword"
    assert event.member_id == sms_subscriber.pk
    assert event.evidence == {"text": text.strip(), "phone_last4": sms_subscriber.phone[-4:]}
    assert can_contact(sms_subscriber, brand, marketing_purpose, "sms").reason == "withdrawn"


@pytest.mark.parametrize("phone_format", ["{n}", "+86{n}", "86{n}", "+86-{a}-{b}-{c}", "{a} {b} {c}"])
def test_phone_in_any_format(sms_subscriber, brand, phone_format):
    n = national(sms_subscriber.phone)
    phone = phone_format.format(n=n, a=n[:3], b=n[3:7], c=n[7:])
    assert len(optin.handle_sms_reply(brand=brand, phone=phone, text="TD")) == 1


@pytest.mark.parametrize("text", ["好的", "TD please", "", "1", "退订了吗？"])
def test_other_text_changes_nothing(sms_subscriber, brand, text):
    count = ConsentEvent.objects.count()
    assert optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text=text) == []
    assert ConsentEvent.objects.count() == count


def test_unknown_phone_changes_nothing(sms_subscriber, brand):
    count = ConsentEvent.objects.count()
    assert optin.handle_sms_reply(brand=brand, phone="13912345678", text="TD") == []
    assert ConsentEvent.objects.count() == count


def test_invalid_phone_is_an_error(brand):
    with pytest.raises(ConsentError) as exc:
        optin.handle_sms_reply(brand=brand, phone="12345", text="TD")
    assert exc.value.field == "phone"


def test_only_active_marketing_sms_purposes_of_this_brand(sms_subscriber, brand, marketing_purpose):
    Purpose.objects.create(brand=brand, code="newsletter", name="电子报", channels=["email"], is_marketing=True)
    Purpose.objects.create(brand=brand, code="service", name="服务通知", channels=["sms"], is_marketing=False)
    Purpose.objects.create(brand=brand, code="old", name="旧活动", channels=["sms"], is_marketing=True, is_active=False)
    events_club = Purpose.objects.create(
        brand=brand, code="events", name="会员活动", channels=["sms", "wechat"], is_marketing=True
    )
    other_brand = BrandFactory(code="peony", name="牡丹")
    Purpose.objects.create(brand=other_brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)

    events = optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text="退订")

    assert {e.purpose_id for e in events} == {marketing_purpose.pk, events_club.pk}
    assert {e.channel for e in events} == {"sms"}


def test_a_second_reply_records_nothing_new(sms_subscriber, brand):
    assert len(optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text="TD")) == 1
    assert optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text="STOP") == []


def test_email_consent_is_untouched(sms_subscriber, brand, marketing_purpose):
    for action in ("requested", "confirmed"):
        services.record_consent(
            member=sms_subscriber,
            brand=brand,
            purpose=marketing_purpose,
            channel="email",
            action=action,
            source_type="privacy_center",
        )
    optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text="TD")
    assert can_contact(sms_subscriber, brand, marketing_purpose, "email").allowed


def test_received_at_is_when_the_person_acted(sms_subscriber, brand):
    received = timezone.now() - dt.timedelta(minutes=3)
    (event,) = optin.handle_sms_reply(brand=brand, phone=sms_subscriber.phone, text="TD", received_at=received)
    assert event.occurred_at == received


def test_follows_merged_members(brand, marketing_purpose):
    survivor = MemberFactory()
    absorbed = MemberFactory(phone="+8613911112222")
    Identity.objects.create(member=absorbed, kind="phone", value=absorbed.phone)
    Member.objects.filter(pk=absorbed.pk).update(status=Member.Status.MERGED, merged_into=survivor)

    (event,) = optin.handle_sms_reply(brand=brand, phone="139 1111 2222", text="TD")

    assert event.member_id == survivor.pk

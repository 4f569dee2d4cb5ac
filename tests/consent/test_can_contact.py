"""The contact decision: each reason, the query budget, and the set-based form agreeing
with the per-member function."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import services
from consent.models import Notice, Purpose, Suppression
from consent.queries import can_contact, contactable_members, minor_cutoff
from members.models import Brand, Identity, Member

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(brand):
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销", channels=["sms", "email", "wechat"], is_marketing=True
    )
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
    )
    return purpose


def record(member, brand, action, channel="sms", **kw):
    return services.record_consent(
        member=member, brand=brand, purpose="marketing", channel=channel, action=action, source_type="store", **kw
    )


def adult(**kw):
    return Member.objects.create(phone="+8613800138000", email="a@example.com", birth_date=dt.date(1990, 1, 1), **kw)


def test_default_deny(brand, marketing):
    assert can_contact(adult(), brand, marketing, "sms").reason == "no_consent"


def test_granted_is_allowed_with_its_time(brand, marketing):
    member = adult()
    event = record(member, brand, "granted").event
    decision = can_contact(member, brand, marketing, "sms")
    assert decision.allowed and decision.reason == "allowed" and decision.as_of == event.occurred_at


def test_withdrawn(brand, marketing):
    member = adult()
    record(member, brand, "granted", occurred_at=timezone.now() - dt.timedelta(hours=1))
    record(member, brand, "withdrawn")
    assert can_contact(member, brand, marketing, "sms").reason == "withdrawn"


def test_email_needs_confirmation(brand, marketing):
    member = adult()
    record(member, brand, "granted", channel="email", occurred_at=timezone.now() - dt.timedelta(minutes=2))
    assert can_contact(member, brand, marketing, "email").reason == "pending_confirmation"
    record(member, brand, "requested", channel="email", occurred_at=timezone.now() - dt.timedelta(minutes=1))
    assert can_contact(member, brand, marketing, "email").reason == "pending_confirmation"
    record(member, brand, "confirmed", channel="email")
    assert can_contact(member, brand, marketing, "email").allowed


def test_minor_needs_a_guardian(brand, marketing):
    child = Member.objects.create(phone="+8613800138001", birth_date=timezone.localdate() - dt.timedelta(days=365 * 10))
    record(child, brand, "granted", occurred_at=timezone.now() - dt.timedelta(minutes=1))
    assert can_contact(child, brand, marketing, "sms").reason == "minor"
    record(child, brand, "granted", by_guardian=True)
    assert can_contact(child, brand, marketing, "sms").allowed


def test_unreachable(brand, marketing):
    member = Member.objects.create(email="only@example.com")
    record(member, brand, "granted")
    record(member, brand, "granted", channel="wechat")
    assert can_contact(member, brand, marketing, "sms").reason == "unreachable"
    assert can_contact(member, brand, marketing, "wechat").reason == "unreachable"
    Identity.objects.create(member=member, kind="wechat_unionid", value="oUnion1234567890")
    assert can_contact(member, brand, marketing, "wechat").allowed


def test_erased(brand, marketing):
    member = adult()
    record(member, brand, "granted")
    Member.objects.filter(pk=member.pk).update(status=Member.Status.ERASED)
    assert can_contact(member.pk, brand, marketing, "sms").reason == "erased"


def test_suppressed(brand, marketing):
    member = adult()
    record(member, brand, "granted")
    Suppression.objects.create(channel="sms", value="+8613800138000", reason="complaint")
    assert can_contact(member, brand, marketing, "sms").reason == "suppressed"


def test_merged_member_answers_for_the_survivor(brand, marketing):
    survivor = adult()
    absorbed = Member.objects.create(status=Member.Status.MERGED, merged_into=survivor)
    record(survivor, brand, "granted")
    assert can_contact(absorbed.pk, brand, marketing, "sms").allowed


def test_consent_is_per_brand(brand, marketing):
    member = adult()
    record(member, brand, "granted")
    other = Brand.objects.create(code="other", name="Other")
    other_purpose = Purpose.objects.create(brand=other, code="marketing", name="M", channels=["sms"], is_marketing=True)
    assert can_contact(member, other, other_purpose, "sms").reason == "no_consent"


def test_at_most_three_queries(brand, marketing, django_assert_max_num_queries):
    member = adult()
    record(member, brand, "granted")
    with django_assert_max_num_queries(3):
        assert can_contact(member.pk, brand.pk, marketing, "sms").allowed
    with django_assert_max_num_queries(3):
        assert can_contact(member.pk, brand.pk, marketing, "wechat").reason == "no_consent"


# --- set-based form == per-member function -----------------------------------------------

member_strategy = st.fixed_dictionaries(
    {
        "phone": st.booleans(),
        "email": st.booleans(),
        "unionid": st.booleans(),
        "age": st.sampled_from([None, 8, 13, 14, 15, 40]),
        "status": st.sampled_from(["active", "active", "active", "erased"]),
        "events": st.lists(
            st.tuples(
                st.sampled_from(["sms", "email", "wechat"]),
                st.sampled_from(["granted", "withdrawn", "requested", "confirmed"]),
                st.booleans(),  # by guardian
                st.integers(0, 3),  # minutes ago
            ),
            max_size=4,
        ),
        "suppressed": st.booleans(),
    }
)


def _build(brand, people):
    members = []
    for i, p in enumerate(people):
        birth = None
        if p["age"] is not None:
            birth = (
                minor_cutoff() + dt.timedelta(days=1)
                if p["age"] == 14
                else timezone.localdate() - dt.timedelta(days=int(p["age"] * 365.25))
            )
        member = Member.objects.create(
            phone=f"+86138001380{i:02d}" if p["phone"] else "",
            email=f"p{i}@example.com" if p["email"] else "",
            birth_date=birth,
        )
        if p["unionid"]:
            Identity.objects.create(member=member, kind="wechat_unionid", value=f"oUnionProp{i:08d}")
        for channel, action, guardian, minutes in p["events"]:
            if action in ("requested", "confirmed") and channel != "email":
                action = "granted"
            when = timezone.now() - dt.timedelta(minutes=minutes)
            if action == "confirmed":  # a confirmation answers a request
                record(member, brand, "requested", channel=channel, occurred_at=when - dt.timedelta(seconds=1))
            with contextlib.suppress(services.ConsentError):  # a confirmation with no open request
                record(member, brand, action, channel=channel, by_guardian=guardian, occurred_at=when)
        if p["suppressed"] and p["phone"]:
            Suppression.objects.create(brand=brand, channel="sms", value=member.phone, reason="bounce")
        if p["status"] == "erased":
            Member.objects.filter(pk=member.pk).update(status="erased")
        members.append(member)
    return members


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(people=st.lists(member_strategy, min_size=1, max_size=6))
def test_set_based_form_agrees_with_can_contact(people, brand, marketing):
    with transaction.atomic():
        members = _build(brand, people)
        for channel in ("sms", "email", "wechat"):
            allowed_set = set(contactable_members(brand, marketing, channel).values_list("pk", flat=True))
            one_by_one = {m.pk for m in members if can_contact(m.pk, brand, marketing, channel).allowed}
            assert allowed_set == one_by_one, channel
        transaction.set_rollback(True)

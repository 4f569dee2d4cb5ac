"""The contact decision: each reason (consent, then preferences, then reachability), the
query budget, and the set-based form agreeing with the per-member function."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import services
from consent.models import Notice, Preference, Purpose, Suppression
from consent.queries import (
    Reason,
    can_contact,
    consent_q,
    contactable_members,
    in_quiet_hours,
    minor_cutoff,
    preference_q,
    reachable_q,
)
from members.models import Brand, Identity, Member
from segments.models import ContactLog, ContactPolicy

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


STORE_PROOF = {"confirmed_at": "2026-01-01T10:00:00+08:00", "ip": "198.51.100.7", "message_id": "<optin@store.example>"}


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
    record(member, brand, "confirmed", channel="email", confirmation=STORE_PROOF)  # the store's own double opt-in
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


def test_preferences_and_sends_cost_no_extra_query(brand, marketing, django_assert_num_queries):
    member = adult()
    record(member, brand, "granted")
    prefer(member, brand, channels=["sms"], max_per_week=2, quiet_start=dt.time(22), quiet_end=dt.time(8))
    ContactPolicy.objects.create(brand=brand, max_per_week=5)
    sent(member, brand, marketing, days_ago=1)
    Identity.objects.create(member=member, kind="phone", value=member.phone)
    with django_assert_num_queries(1):
        assert can_contact(member.pk, brand.pk, marketing, "sms", at=local(12)).allowed
    with django_assert_num_queries(1):
        assert can_contact(None, brand.pk, marketing, "sms", identity=("phone", member.phone)).allowed


# --- preferences ------------------------------------------------------------------------


def prefer(member, brand, **fields):
    return Preference.objects.update_or_create(member=member, brand=brand, defaults=fields)[0]


def sent(member, brand, purpose, *, days_ago: float = 0, channel: str = "sms"):
    when = timezone.now() - dt.timedelta(days=days_ago)
    return ContactLog.objects.create(member=member, brand=brand, purpose=purpose, channel=channel, sent_at=when)


def local(hour: int, minute: int = 0) -> dt.datetime:
    """Today at this wall-clock time in TIME_ZONE (the clock quiet hours use)."""
    return timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(hour, minute)))


@pytest.fixture
def consented(brand, marketing):
    member = adult()
    record(member, brand, "granted")
    record(member, brand, "granted", channel="wechat")
    Identity.objects.create(member=member, kind="wechat_unionid", value="oUnionPref0000001")
    return member


def test_a_channel_not_chosen(brand, marketing, consented):
    prefer(consented, brand, channels=["wechat"])
    assert can_contact(consented, brand, marketing, "sms").reason == Reason.PREFERENCE_CHANNEL
    assert can_contact(consented, brand, marketing, "wechat").allowed


def test_no_channel_chosen_means_no_limit_on_channels(brand, marketing, consented):
    prefer(consented, brand, channels=[], topics=["护肤"])
    assert can_contact(consented, brand, marketing, "sms").allowed
    assert can_contact(consented, brand, marketing, "wechat").allowed


def test_preferences_are_per_brand(brand, marketing, consented):
    other = Brand.objects.create(code="other", name="Other")
    prefer(consented, other, channels=["wechat"], max_per_week=0)
    assert can_contact(consented, brand, marketing, "sms").allowed


def test_zero_messages_a_week_is_paused(brand, marketing, consented):
    prefer(consented, brand, max_per_week=0)
    assert can_contact(consented, brand, marketing, "sms").reason == Reason.PAUSED
    assert can_contact(consented, brand, marketing, "wechat").reason == Reason.PAUSED


def test_weekly_limit_reached_counts_the_contact_log(brand, marketing, consented):
    prefer(consented, brand, max_per_week=2)
    sent(consented, brand, marketing, days_ago=1)
    sent(consented, brand, marketing, days_ago=8)  # last week's send no longer counts
    assert can_contact(consented, brand, marketing, "sms").allowed
    sent(consented, brand, marketing, days_ago=2, channel="wechat")  # every channel counts
    assert can_contact(consented, brand, marketing, "sms").reason == Reason.FREQUENCY_CAP
    # The week runs back from the time of sending: in six days the first two sends are out.
    assert can_contact(consented, brand, marketing, "sms", at=timezone.now() + dt.timedelta(days=6)).allowed


def test_other_brands_sends_do_not_count(brand, marketing, consented):
    prefer(consented, brand, max_per_week=1)
    other = Brand.objects.create(code="other", name="Other")
    ContactLog.objects.create(member=consented, brand=other, purpose=marketing, channel="sms")
    assert can_contact(consented, brand, marketing, "sms").allowed


def test_without_their_own_limit_the_brand_default_applies(brand, marketing, consented, settings):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 0  # no default limit
    sent(consented, brand, marketing)
    assert can_contact(consented, brand, marketing, "sms").allowed
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 1
    assert can_contact(consented, brand, marketing, "sms").reason == Reason.FREQUENCY_CAP
    ContactPolicy.objects.create(brand=brand, max_per_week=2)  # the brand's policy beats the setting
    assert can_contact(consented, brand, marketing, "sms").allowed
    prefer(consented, brand, max_per_week=1)  # and the person's own beats both
    assert can_contact(consented, brand, marketing, "sms").reason == Reason.FREQUENCY_CAP


def test_quiet_hours_only_when_the_time_of_sending_is_given(brand, marketing, consented):
    prefer(consented, brand, quiet_start=dt.time(22), quiet_end=dt.time(8))
    assert can_contact(consented, brand, marketing, "sms").allowed
    for hour, minute in ((22, 0), (23, 30), (0, 0), (7, 59)):
        assert can_contact(consented, brand, marketing, "sms", at=local(hour, minute)).reason == Reason.QUIET_HOURS
    for hour, minute in ((8, 0), (12, 0), (21, 59)):
        assert can_contact(consented, brand, marketing, "sms", at=local(hour, minute)).allowed


def test_quiet_hours_are_on_the_local_clock(brand, marketing, consented):
    prefer(consented, brand, quiet_start=dt.time(12), quiet_end=dt.time(14))
    noon_in_shanghai = dt.datetime.combine(timezone.localdate(), dt.time(4, 30), tzinfo=dt.UTC)  # 12:30 +08:00
    assert can_contact(consented, brand, marketing, "sms", at=noon_in_shanghai).reason == Reason.QUIET_HOURS


@pytest.mark.parametrize(
    ("start", "end", "at", "quiet"),
    [
        (dt.time(22), dt.time(8), dt.time(22), True),
        (dt.time(22), dt.time(8), dt.time(8), False),
        (dt.time(12), dt.time(14), dt.time(13, 59, 59), True),
        (dt.time(12), dt.time(14), dt.time(14), False),
        (dt.time(12), dt.time(14), dt.time(12), True),
        (dt.time(12), dt.time(14), dt.time(11, 59, 59), False),
        (dt.time(22), dt.time(8), dt.time(21, 59, 59), False),
        (dt.time(22), dt.time(8), dt.time(7, 59, 59), True),
        (dt.time(8), dt.time(8), dt.time(8), False),  # equal: no quiet hours
        (None, dt.time(8), dt.time(7), False),
    ],
)
def test_quiet_hours_interval_in_both_forms(brand, marketing, consented, start, end, at, quiet):
    """``[start, end)``, overnight when the end is earlier: per member and set-based alike."""
    assert in_quiet_hours(start, end, at) is quiet
    prefer(consented, brand, quiet_start=start, quiet_end=end)
    when = local(at.hour, at.minute) + dt.timedelta(seconds=at.second)
    assert (can_contact(consented, brand, marketing, "sms", at=when).reason == Reason.QUIET_HOURS) is quiet
    assert (not contactable_members(brand, marketing, "sms", at=when).filter(pk=consented.pk).exists()) is quiet


def test_purposes_without_a_channel_ignore_preferences(brand, consented):
    analytics = Purpose.objects.create(brand=brand, code="analytics", name="分析", channels=[])
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=analytics, locale="zh-hans", title="t", body="b"
    )
    services.record_consent(
        member=consented, brand=brand, purpose=analytics, channel="", action="granted", source_type="store"
    )
    prefer(consented, brand, channels=["wechat"], max_per_week=0, quiet_start=dt.time(0), quiet_end=dt.time(23))
    assert can_contact(consented, brand, analytics, "", at=local(12)).allowed
    assert consented.pk in set(contactable_members(brand, analytics, "", at=local(12)).values_list("pk", flat=True))


def test_consent_reasons_come_before_preferences(brand, marketing):
    member = adult()
    prefer(member, brand, channels=["wechat"], max_per_week=0)
    assert can_contact(member, brand, marketing, "sms").reason == Reason.NO_CONSENT
    record(member, brand, "granted", occurred_at=timezone.now() - dt.timedelta(minutes=1))
    record(member, brand, "withdrawn")
    assert can_contact(member, brand, marketing, "sms").reason == Reason.WITHDRAWN


def test_preferences_come_before_reachability_in_their_own_order(brand, marketing):
    member = Member.objects.create(email="only@example.com", birth_date=dt.date(1990, 1, 1))
    record(member, brand, "granted")  # SMS consent, but no phone: unreachable
    assert can_contact(member, brand, marketing, "sms").reason == Reason.UNREACHABLE
    prefer(member, brand, quiet_start=dt.time(22), quiet_end=dt.time(8))
    assert can_contact(member, brand, marketing, "sms", at=local(23)).reason == Reason.QUIET_HOURS
    prefer(member, brand, max_per_week=1)
    sent(member, brand, marketing)
    assert can_contact(member, brand, marketing, "sms", at=local(23)).reason == Reason.FREQUENCY_CAP
    prefer(member, brand, max_per_week=0)
    assert can_contact(member, brand, marketing, "sms", at=local(23)).reason == Reason.PAUSED
    prefer(member, brand, channels=["email"])
    assert can_contact(member, brand, marketing, "sms", at=local(23)).reason == Reason.PREFERENCE_CHANNEL


def test_a_merged_member_answers_with_the_survivors_preferences(brand, marketing, consented):
    absorbed = Member.objects.create(status=Member.Status.MERGED, merged_into=consented)
    prefer(consented, brand, quiet_start=dt.time(22), quiet_end=dt.time(8))
    assert can_contact(absorbed.pk, brand, marketing, "sms", at=local(23)).reason == Reason.QUIET_HOURS


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
        "preference": st.none()
        | st.fixed_dictionaries(
            {
                "channels": st.lists(st.sampled_from(["sms", "email", "wechat"]), unique=True, max_size=2),
                "max_per_week": st.sampled_from([None, None, 0, 1, 2]),
                "quiet": st.sampled_from([None, (22, 8), (12, 14), (8, 8), (0, 12)]),
            }
        ),
        # Sends by the brand, days before now: the week's count decides at 1 and 2.
        "sends": st.lists(st.sampled_from([0.1, 3, 6.5, 8, 30]), max_size=3),
    }
)
# The time of sending: none (no quiet hours, count back from now), or today at a local hour.
at_strategy = st.none() | st.sampled_from([(0, 30), (7, 59), (8, 0), (12, 0), (13, 59), (22, 0), (23, 30)])


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
            # A store's confirmation comes with the proof of its own double opt-in.
            proof = {"confirmation": STORE_PROOF} if action == "confirmed" else {}
            record(member, brand, action, channel=channel, by_guardian=guardian, occurred_at=when, **proof)
        if p["suppressed"] and p["phone"]:
            Suppression.objects.create(brand=brand, channel="sms", value=member.phone, reason="bounce")
        if p["status"] == "erased":
            Member.objects.filter(pk=member.pk).update(status="erased")
        if p["preference"] is not None:
            quiet = p["preference"]["quiet"]
            prefer(
                member, brand, channels=p["preference"]["channels"], max_per_week=p["preference"]["max_per_week"],
                quiet_start=dt.time(quiet[0]) if quiet else None, quiet_end=dt.time(quiet[1]) if quiet else None,
            )  # fmt: skip
        for days_ago in p["sends"]:
            ContactLog.objects.create(
                member=member,
                brand=brand,
                purpose_id=0,
                channel="sms",
                sent_at=timezone.now() - dt.timedelta(days=days_ago),
            )
        members.append(member)
    return members


# The funnel step of a segment build that drops a person with this reason.
STEP = {
    **dict.fromkeys(["erased", "no_consent", "withdrawn", "pending_confirmation", "minor"], "consent"),
    **dict.fromkeys(["preference_channel", "paused", "frequency_cap", "quiet_hours"], "preferences"),
    **dict.fromkeys(["unreachable", "suppressed"], "reachable"),
    "allowed": "final",
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    people=st.lists(member_strategy, min_size=1, max_size=6),
    at=at_strategy,
    brand_default=st.sampled_from([None, 0, 1, 2]),
)
def test_set_based_form_agrees_with_can_contact(people, at, brand_default, brand, marketing):
    """Same people allowed, and each refused person's reason is the funnel step (consent,
    preferences, reachability) at which the set-based parts first drop them."""
    at = local(*at) if at else None
    with transaction.atomic():
        if brand_default is not None:
            ContactPolicy.objects.create(brand=brand, max_per_week=brand_default)
        members = _build(brand, people)
        for channel in ("sms", "email", "wechat"):
            allowed_set = set(contactable_members(brand, marketing, channel, at=at).values_list("pk", flat=True))
            decisions = {m.pk: can_contact(m.pk, brand, marketing, channel, at=at) for m in members}
            assert allowed_set == {pk for pk, decision in decisions.items() if decision.allowed}, channel

            def ids(q):
                return set(Member.objects.filter(q).values_list("pk", flat=True))

            consented = ids(consent_q(brand, marketing, channel))
            preferred = ids(preference_q(brand, channel, at=at))
            reachable = ids(reachable_q(brand, channel))
            for pk, decision in decisions.items():
                step = (
                    "consent" if pk not in consented
                    else "preferences" if pk not in preferred
                    else "reachable" if pk not in reachable
                    else "final"
                )  # fmt: skip
                assert STEP[decision.reason] == step, (channel, decision.reason)
        transaction.set_rollback(True)

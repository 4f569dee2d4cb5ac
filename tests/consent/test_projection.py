"""ConsentState is a fold of the ledger by occurred_at, whatever order events arrive in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import services
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from members import services as member_services
from members.identities import StoreRecord
from members.models import Brand, Member, Store

pytestmark = pytest.mark.django_db

BASE = timezone.now() - dt.timedelta(days=30)

event_strategy = st.fixed_dictionaries(
    {
        "member": st.integers(0, 2),
        "purpose": st.sampled_from(["marketing", "analytics"]),
        "channel": st.sampled_from(["sms", "email"]),
        "action": st.sampled_from(["granted", "withdrawn"]),
        # Few distinct minutes, so equal occurred_at values (ties) happen often.
        "minute": st.integers(0, 5),
    }
)


def _world():
    brand = Brand.objects.create(code="fold", name="Fold")
    marketing = Purpose.objects.create(brand=brand, code="marketing", name="M", channels=["sms", "email"])
    analytics = Purpose.objects.create(brand=brand, code="analytics", name="A", channels=["sms", "email"])
    for purpose in (marketing, analytics):
        services.publish_notice(
            brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
        )
    members = [Member.objects.create(name=f"m{i}") for i in range(3)]
    return brand, members


def _record(brand, members, e):
    services.record_consent(
        member=members[e["member"]],
        brand=brand,
        purpose=e["purpose"],
        channel=e["channel"],
        action=e["action"],
        source_type="api_key",
        occurred_at=BASE + dt.timedelta(minutes=e["minute"]),
    )


def _states():
    return {
        (s.member_id, s.purpose.code, s.channel): (s.action, s.occurred_at)
        for s in ConsentState.objects.select_related("purpose")
    }


def _fold():
    """The reference: per key, the event latest by (occurred_at, arrival)."""
    out = {}
    for e in ConsentEvent.objects.select_related("purpose").order_by("occurred_at", "id"):
        out[(e.member_id, e.purpose.code, e.channel)] = (e.action, e.occurred_at)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(event_strategy, min_size=1, max_size=25))
def test_state_equals_the_fold_by_occurred_at(events):
    with transaction.atomic():
        brand, members = _world()
        for e in events:
            _record(brand, members, e)
        incremental = _states()
        assert incremental == _fold()
        services.rebuild_consent_state()
        assert _states() == incremental
        assert services.state_differences() == []
        transaction.set_rollback(True)


def test_late_old_event_never_overrides_a_newer_choice(brand):
    world_brand, members = _world()
    _record(
        world_brand,
        members,
        {"member": 0, "purpose": "marketing", "channel": "sms", "action": "withdrawn", "minute": 5},
    )
    _record(
        world_brand, members, {"member": 0, "purpose": "marketing", "channel": "sms", "action": "granted", "minute": 1}
    )
    state = ConsentState.objects.get()
    assert state.action == "withdrawn"
    assert ConsentEvent.objects.count() == 2  # the late event is still evidence


def test_external_id_makes_recording_idempotent(brand):
    world_brand, members = _world()
    kwargs = {
        "member": members[0],
        "brand": world_brand,
        "purpose": "marketing",
        "channel": "sms",
        "action": "granted",
        "source_type": "api_key",
        "external_id": "tmall-evt-1",
    }
    first = services.record_consent(**kwargs)
    again = services.record_consent(**kwargs)
    assert first.created and not again.created
    assert again.event.pk == first.event.pk
    assert ConsentEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"purpose": "nope"}, "purpose"),
        ({"channel": "fax"}, "channel"),
        ({"action": "maybe"}, "action"),
        ({"source_type": "rumour"}, "source"),
        ({"occurred_at": timezone.now() + dt.timedelta(hours=1)}, "occurred_at"),
        ({"occurred_at": dt.datetime(2030, 1, 1)}, "occurred_at"),  # naive
        ({"action": "requested", "channel": "sms"}, "action"),
    ],
)
def test_invalid_events_are_rejected_naming_the_field(brand, change, field):
    world_brand, members = _world()
    kwargs = {
        "member": members[0],
        "brand": world_brand,
        "purpose": "marketing",
        "channel": "sms",
        "action": "granted",
        "source_type": "store",
    }
    with pytest.raises(services.ConsentError) as info:
        services.record_consent(**{**kwargs, **change})
    assert info.value.field == field
    assert ConsentEvent.objects.count() == 0


def test_purpose_of_another_brand_is_rejected(brand):
    world_brand, members = _world()
    other = Brand.objects.create(code="other", name="Other")
    foreign = Purpose.objects.create(brand=other, code="marketing", name="M", channels=["sms"])
    with pytest.raises(services.ConsentError, match="another brand"):
        services.record_consent(
            member=members[0], brand=world_brand, purpose=foreign, channel="sms", action="granted", source_type="store"
        )


def test_grant_without_any_notice_is_rejected(brand):
    other = Brand.objects.create(code="bare", name="Bare")
    Purpose.objects.create(brand=other, code="marketing", name="M", channels=["sms"])
    with pytest.raises(services.ConsentError) as info:
        services.record_consent(
            member=Member.objects.create(),
            brand=other,
            purpose="marketing",
            channel="sms",
            action="granted",
            source_type="store",
        )
    assert info.value.field == "notice"


@pytest.fixture
def two_members(tmall, jd, marketing_purpose):
    """Two members of one person, not linked yet: an older one by phone, a younger by e-mail."""
    older = member_services.resolve_store_record(
        StoreRecord.clean(store=tmall, store_member_id="T1", phone="13800138000")
    ).member
    younger = member_services.resolve_store_record(
        StoreRecord.clean(store=jd, store_member_id="J1", email="w@example.com")
    ).member
    return older, younger


def link(store):
    """A record carrying both contact points: merges the two members."""
    return member_services.resolve_store_record(
        StoreRecord.clean(store=store, store_member_id="T2", phone="13800138000", email="w@example.com")
    )


def test_merge_folds_both_members_consent_and_unmerge_splits_it(brand, tmall, two_members):
    older, younger = two_members
    services.record_consent(
        member=older,
        brand=brand,
        purpose="marketing",
        channel="sms",
        action="granted",
        source_type="store",
        occurred_at=BASE,
    )
    services.record_consent(
        member=younger,
        brand=brand,
        purpose="marketing",
        channel="sms",
        action="withdrawn",
        source_type="store",
        occurred_at=BASE + dt.timedelta(days=1),
    )
    event = link(tmall).merges[0]
    # One person now: the newer choice (withdrawn, made at the JD store) wins.
    [state] = ConsentState.objects.all()
    assert (state.member_id, state.action) == (older.pk, "withdrawn")

    member_services.unmerge(event)
    states = dict(ConsentState.objects.values_list("member_id", "action"))
    assert states == {older.pk: "granted", younger.pk: "withdrawn"}


def test_events_for_a_merged_member_go_to_the_survivor(brand, tmall, two_members):
    older, younger = two_members
    link(tmall)
    younger.refresh_from_db()
    recorded = services.record_consent(
        member=younger, brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store"
    )
    assert recorded.event.member_id == older.pk


def test_store_of_another_brand_is_rejected(brand):
    world_brand, members = _world()
    store = Store.objects.create(brand=brand, code="elsewhere", name="X", platform="jd")
    with pytest.raises(services.ConsentError) as info:
        services.record_consent(
            member=members[0],
            brand=world_brand,
            purpose="marketing",
            channel="sms",
            action="granted",
            source_type="store",
            store=store,
        )
    assert info.value.field == "store"

"""Identity resolution: one person behind many store records (DESIGN.md ⚑)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cdp.models import AuditLog
from members import services
from members.identities import RecordError, StoreRecord, erased_value, normalize_email, normalize_phone
from members.models import Identity, Member, MergeEvent, StoreMembership
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def resolve(store, member_id, **values):
    return services.resolve_store_record(StoreRecord.clean(store=store, store_member_id=member_id, **values))


@pytest.mark.parametrize(
    "raw", ["138 0013 8000", "+86-138-0013-8000", "8613800138000", "13800138000", "0086 138 0013 8000"]
)
def test_phone_formats_normalise_to_e164(raw):
    assert normalize_phone(raw) == "+8613800138000"


def test_foreign_numbers_stay_valid():
    assert normalize_phone("+7 916 123-45-67") == "+79161234567"


@pytest.mark.parametrize("raw", ["123", "not a phone", "+86 138 0013", ""])
def test_invalid_phones_are_rejected_with_the_column(raw):
    with pytest.raises(RecordError) as info:
        normalize_phone(raw)
    assert info.value.field == "phone"


def test_emails_are_trimmed_and_lower_cased():
    assert normalize_email("  Alice.Wang@Example.COM ") == "alice.wang@example.com"
    with pytest.raises(RecordError):
        normalize_email("alice@")


def test_three_phone_formats_are_one_member(tmall, jd, wechat):
    a = resolve(tmall, "T1", phone="138 0013 8000")
    b = resolve(jd, "J1", phone="+86-138-0013-8000")
    c = resolve(wechat, "W1", phone="8613800138000")
    assert a.created and not b.created and not c.created
    assert a.member.pk == b.member.pk == c.member.pk
    assert Member.objects.active().count() == 1
    assert StoreMembership.objects.filter(member=a.member).count() == 3
    assert Identity.objects.filter(kind="phone").count() == 1


def test_new_record_creates_member_with_identities_and_membership(tmall):
    result = resolve(
        tmall,
        "T1",
        phone="13800138000",
        email="Wei@Example.com",
        name="张伟",
        gender="男",
        birth_date=dt.date(1990, 5, 1),
        tier="金卡",
        points=120,
    )
    member = result.member
    assert result.created
    assert (member.name, member.gender, member.phone, member.email) == (
        "张伟",
        "M",
        "+8613800138000",
        "wei@example.com",
    )
    kinds = set(member.identities.values_list("kind", flat=True))
    assert kinds == {"phone", "email", "store_member"}
    membership = member.memberships.get()
    assert (membership.store_member_id, membership.tier, membership.points) == ("T1", "金卡", 120)
    assert AuditLog.objects.filter(action="member.created", object_id=str(member.pk)).exists()


def test_same_record_twice_changes_nothing(tmall):
    first = resolve(tmall, "T1", phone="13800138000", name="张伟")
    again = resolve(tmall, "T1", phone="138 0013 8000", name="张伟")
    assert again.member.pk == first.member.pk
    assert not again.created and not again.updated
    assert Identity.objects.count() == 2 and StoreMembership.objects.count() == 1


def test_each_rule_links_records(tmall, jd):
    by_email = resolve(tmall, "T1", email="a@example.com")
    assert resolve(jd, "J1", email="A@example.com").member.pk == by_email.member.pk
    by_union = resolve(tmall, "T2", wechat_unionid="oUnion1234567890abcdef")
    assert resolve(jd, "J2", wechat_unionid="oUnion1234567890abcdef").member.pk == by_union.member.pk
    by_store_id = resolve(tmall, "T3", phone="13900000001")
    # Same store member id, new phone: the person changed numbers.
    moved = resolve(tmall, "T3", phone="13900000002")
    assert moved.member.pk == by_store_id.member.pk
    assert set(moved.member.identities.filter(kind="phone").values_list("value", flat=True)) == {
        "+8613900000001",
        "+8613900000002",
    }


def test_names_alone_never_merge(tmall, jd):
    a = resolve(tmall, "T1", name="王芳", city="上海")
    b = resolve(jd, "J1", name="王芳", city="上海")
    assert a.member.pk != b.member.pk


def test_record_linking_two_members_merges_into_the_oldest(tmall, jd, wechat):
    older = resolve(tmall, "T1", phone="13800138000", name="张伟").member
    younger = resolve(jd, "J1", email="wei@example.com", city="杭州").member
    OrderFactory(store=jd, member=younger)
    bridge = resolve(wechat, "W1", phone="13800138000", email="wei@example.com")
    assert bridge.member.pk == older.pk
    [event] = bridge.merges
    # The shared identity is kept as its keyed hash, with a masked form for staff.
    assert (event.survivor_id, event.absorbed_id, event.rule, event.matched_value, event.matched_display) == (
        older.pk,
        younger.pk,
        "email",
        erased_value("email", "wei@example.com"),
        "w***@example.com",
    )
    assert set(event.moved) == {"identities", "memberships", "orders", "members"}
    assert len(event.moved["orders"]) == 1
    younger.refresh_from_db()
    older.refresh_from_db()
    assert younger.status == "merged" and younger.merged_into_id == older.pk
    assert older.city == "杭州"  # a gap filled from the absorbed profile
    assert older.order_count == 1  # aggregates follow the moved orders
    assert younger.order_count == 0  # and the absorbed member's drop at once
    assert older.memberships.count() == 3
    assert AuditLog.objects.filter(action="member.merged", object_id=str(older.pk)).exists()


def test_survivorship_newer_observation_wins_older_only_fills_gaps(tmall, jd):
    now = timezone.now()
    member = resolve(tmall, "T1", phone="13800138000", city="上海", observed_at=now - dt.timedelta(days=10)).member
    resolve(jd, "J1", phone="13800138000", city="北京", name="张伟", observed_at=now - dt.timedelta(days=30))
    member.refresh_from_db()
    assert (member.city, member.name) == ("上海", "张伟")
    resolve(jd, "J1", phone="13800138000", city="北京", observed_at=now)
    member.refresh_from_db()
    assert member.city == "北京"


def test_unmerge_restores_the_absorbed_member(tmall, jd, wechat):
    older = resolve(tmall, "T1", phone="13800138000").member
    younger = resolve(jd, "J1", email="wei@example.com", city="杭州").member
    OrderFactory(store=jd, member=younger, external_id="J-1")
    event = resolve(wechat, "W1", phone="13800138000", email="wei@example.com").merges[0]

    restored = services.unmerge(event)

    assert restored.pk == younger.pk
    restored.refresh_from_db()
    older.refresh_from_db()
    assert restored.status == "active" and restored.merged_into is None
    assert set(restored.identities.values_list("kind", "value")) == {
        ("email", "wei@example.com"),
        ("store_member", f"{jd.pk}:J1"),
    }
    assert list(restored.memberships.values_list("store_member_id", flat=True)) == ["J1"]
    assert list(restored.orders.values_list("external_id", flat=True)) == ["J-1"]
    assert restored.order_count == 1 and older.order_count == 0
    assert older.city == ""  # the field the merge filled goes back
    event.refresh_from_db()
    assert event.undone_at is not None
    assert AuditLog.objects.filter(action="member.unmerged", object_id=str(younger.pk)).exists()
    with pytest.raises(services.UnmergeError):
        services.unmerge(event)


def test_unmerge_keeps_later_changes_to_survivor(tmall, jd, wechat):
    older = resolve(tmall, "T1", phone="13800138000").member
    resolve(jd, "J1", email="wei@example.com", city="杭州")
    event = resolve(wechat, "W1", phone="13800138000", email="wei@example.com").merges[0]
    resolve(tmall, "T1", phone="13800138000", city="成都")
    services.unmerge(event)
    older.refresh_from_db()
    assert older.city == "成都"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"store_member_id": ""}, "member_id"),
        ({"store_member_id": "x" * 101}, "member_id"),
        ({"store_member_id": "1", "phone": "12345"}, "phone"),
        ({"store_member_id": "1", "email": "nope"}, "email"),
        ({"store_member_id": "1", "gender": "X"}, "gender"),
        ({"store_member_id": "1", "birth_date": dt.date(2999, 1, 1)}, "birthday"),
        ({"store_member_id": "1", "name": "名" * 101}, "name"),
        ({"store_member_id": "1", "wechat_unionid": "bad id!"}, "wechat_unionid"),
        ({"store_member_id": "1", "points": "lots"}, "points"),
    ],
)
def test_bad_values_are_rejected_naming_the_column(tmall, values, field):
    with pytest.raises(RecordError) as info:
        StoreRecord.clean(store=tmall, **values)
    assert info.value.field == field
    assert Member.objects.count() == 0


def test_merge_event_admin_history_is_kept(tmall, jd, wechat):
    resolve(tmall, "T1", phone="13800138000")
    resolve(jd, "J1", email="wei@example.com")
    resolve(wechat, "W1", phone="13800138000", email="wei@example.com")
    assert MergeEvent.objects.count() == 1


def test_merged_members_always_point_at_the_current_survivor(brand, tmall, jd, wechat):
    oldest = resolve(tmall, "T1", phone="13800138000").member
    middle = resolve(jd, "J1", email="mid@example.com").member
    youngest = resolve(jd, "J2", wechat_unionid="oYoungest0123456789").member
    # youngest is absorbed by middle first, then middle by oldest.
    first = resolve(wechat, "W1", email="mid@example.com", wechat_unionid="oYoungest0123456789").merges[0]
    second = resolve(wechat, "W2", phone="13800138000", email="mid@example.com").merges[0]
    assert (first.survivor_id, second.survivor_id) == (middle.pk, oldest.pk)
    youngest.refresh_from_db()
    assert youngest.merged_into_id == oldest.pk  # one hop to the canonical member

    services.unmerge(second)
    youngest.refresh_from_db()
    middle.refresh_from_db()
    assert youngest.merged_into_id == middle.pk and middle.status == "active"

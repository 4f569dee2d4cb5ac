"""Masking holds everywhere: a marketer (no ``members.view_pii``) sees masked values in a
merge event's profile changes and in free attributes, and unknown phone and e-mail columns
of a member file are read as identities; a privacy officer sees them in full, audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from cdp.models import AuditLog
from imports.columns import map_header
from members.masking import PII_VIEWED
from members.models import MergeEvent
from members.services import merge_members
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

PHONE, EMAIL = "+8613812345678", "meimei.han@example.com"


@pytest.fixture
def merge(db):
    older = MemberFactory(name="", phone="", email="")
    newer = MemberFactory(
        name="韩梅梅", phone=PHONE, email=EMAIL, attributes={"联系电话": "13812345678", "备注": "韩梅梅的老客户"}
    )
    event = merge_members(older, newer, rule="phone", matched_value=PHONE)
    assert event is not None
    return event


def _get(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_marketer_sees_merge_profile_changes_masked_and_unaudited(marketer, merge):
    page = _get(marketer, reverse("admin:members_mergeevent_change", args=[merge.pk]))
    assert "138****5678" in page and "m***@example.com" in page
    for clear in (PHONE, "13812345678", EMAIL):
        assert clear not in page
    assert "韩***" in page  # the name in the changes (the survivor's link names them, as everywhere)
    assert not AuditLog.objects.filter(action=PII_VIEWED).exists()


def test_privacy_officer_sees_profile_changes_in_full_audited(privacy_officer, merge):
    page = _get(privacy_officer, reverse("admin:members_mergeevent_change", args=[merge.pk]))
    assert PHONE in page and EMAIL in page and "韩梅梅" in page
    entry = AuditLog.objects.get(action=PII_VIEWED)
    assert entry.actor_user_id == privacy_officer.pk
    assert entry.changes["merge_event"] == merge.pk
    assert entry.changes["view"] == "members_mergeevent_change"


def test_the_shared_identity_is_a_keyed_hash_shown_masked(privacy_officer, merge):
    stored = MergeEvent.objects.get(pk=merge.pk)
    assert stored.matched_value.startswith("erased:") and PHONE not in stored.matched_value
    assert stored.matched_display == "138****5678"
    assert "138****5678" in _get(privacy_officer, reverse("admin:members_mergeevent_change", args=[merge.pk]))


def test_marketer_sees_free_attributes_masked(marketer, merge):
    page = _get(marketer, reverse("admin:members_member_change", args=[merge.survivor_id]))
    assert "13812345678" not in page and "韩梅梅的老客户" not in page
    assert "138****5678" in page and "韩***" in page


def test_privacy_officer_sees_free_attributes_audited(privacy_officer, merge):
    page = _get(privacy_officer, reverse("admin:members_member_change", args=[merge.survivor_id]))
    assert "13812345678" in page and "韩梅梅的老客户" in page
    assert AuditLog.objects.filter(action=PII_VIEWED, object_id=str(merge.survivor_id)).exists()


@pytest.mark.parametrize(
    ("cells", "phone", "email"),
    [
        (["会员ID", "手机号码", "E-mail地址"], 1, 2),
        (["会员ID", "联系电话", "电子邮件"], 1, 2),
        (["会员ID", "手机", "联系电话", "邮箱"], 1, 3),  # the canonical column wins; the other stays an attribute
    ],
)
def test_unknown_phone_and_email_columns_are_identities(cells, phone, email):
    header = map_header(cells)
    assert header.columns["phone"] == phone and header.columns["email"] == email
    assert all(name not in ("手机号码", "E-mail地址", "电子邮件") for _, name in header.extra)

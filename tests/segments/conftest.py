"""Segment fixtures: a brand with stores, a marketing purpose on SMS/e-mail/WeChat, people
with consent, and a helper to grant consent through the ledger."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from consent import services as consent_services
from consent.models import Notice, Purpose
from members.models import Member, StoreMembership
from segments import services
from segments.models import Segment
from tests.conftest import MEMBER_PERMS, _staff_with
from tests.factories import MemberFactory, OrderFactory, store_profile

SEGMENT_PERMS = [
    "view_segment",
    "add_segment",
    "change_segment",
    "build_segment",
    "export_segment",
    "view_segmentbuild",
    "view_segmentexport",
    "view_contactlog",
]


@pytest.fixture
def marketing(brand):
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms", "email", "wechat"], is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销告知", body="v1"
    )
    return purpose


@pytest.fixture
def segment_marketer(db):
    return _staff_with("segment-marketer", [*MEMBER_PERMS, *SEGMENT_PERMS])


def grant(member: Member, purpose: Purpose, channel: str = "sms", action: str = "granted", **kwargs) -> None:
    consent_services.record_consent(
        member=member, brand=purpose.brand, purpose=purpose, channel=channel, action=action,
        source_type="store", **kwargs,
    )  # fmt: skip


def shopper(store, *, orders: int = 0, amount: str = "300.00", days_ago: int = 10, **fields) -> Member:
    """A member of ``store`` with ``orders`` orders there."""
    fields.setdefault("birth_date", dt.date(1992, 5, 1))
    member = MemberFactory(**fields)
    StoreMembership.objects.create(
        member=member, store=store, store_member_id=f"S{member.pk}", tier="gold", **store_profile(member)
    )
    for _ in range(orders):
        OrderFactory(store=store, member=member, amount=amount, placed_at=timezone.now() - dt.timedelta(days=days_ago))
    return member


def segment_form(brand, purpose, rules, *, name: str, **changes) -> dict[str, object]:
    """What the admin's "add segment" form posts: ``rules`` as its JSON, an empty slug
    (made from the name), no limit and no schedule unless ``changes`` say so."""
    data = {
        "brand": brand.pk, "name": name, "slug": "", "description": "", "purpose": purpose.pk,
        "channel": "sms", "rules": json.dumps(rules), "limit": "", "schedule": "",
    }  # fmt: skip
    return data | changes


def make_segment(brand, purpose, rules, *, channel: str = "sms", slug: str = "test-segment", **extra) -> Segment:
    return services.save_segment(
        Segment(brand=brand, purpose=purpose, channel=channel, rules=rules, name=slug.title(), slug=slug, **extra)
    )


def build(segment: Segment):
    requested, _ = services.request_build(segment, enqueue=False)
    return services.run_build(requested.pk)

"""A small world whose dashboard figures are counted by hand in the tests.

Brand lotus (莲花) has stores on Tmall (two), JD and WeChat; brand rose one Tmall store.
People: A on Tmall, JD and WeChat (3 platforms); B at both Tmall stores (1 platform);
C on Tmall and JD (2); D on JD (1); G on Tmall and at rose (1 for lotus); E was merged
into A (not counted); F is only rose's. The period is 2026-01-05 (a Monday) to 2026-01-18.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone

from consent import services as consent_services
from consent.models import Notice, Purpose
from members.models import Member, Store, StoreMembership
from tests.conftest import see_every_brand
from tests.consent.fixtures import *  # noqa: F403 - the report tests use the consent fixtures
from tests.factories import BrandFactory, MemberFactory, StoreFactory


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A moment in the project's time zone (Asia/Shanghai)."""
    return timezone.make_aware(dt.datetime(year, month, day, hour, minute))


SINCE = at(2026, 1, 5, 0)
UNTIL = at(2026, 1, 19, 0)
PERIOD = {"period": "custom", "start": "2026-01-05", "end": "2026-01-18"}


@dataclass
class World:
    lotus: object
    rose: object
    tmall: Store
    tmall2: Store
    jd: Store
    wechat: Store
    rose_tmall: Store
    marketing: Purpose
    rose_marketing: Purpose
    people: dict[str, Member]


def _purpose(brand, code="marketing", channels=("sms", "email")) -> Purpose:
    purpose = Purpose.objects.create(
        brand=brand, code=code, name=f"{code}营销", channels=list(channels), is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="告知", body="v1"
    )
    return purpose


@pytest.fixture
def world(db) -> World:
    lotus = BrandFactory(code="lotus", name="莲花美妆")
    rose = BrandFactory(code="rose", name="玫瑰")
    tmall = StoreFactory(brand=lotus, code="lotus-tmall", name="莲花天猫", platform="tmall")
    tmall2 = StoreFactory(brand=lotus, code="lotus-tmall-2", name="莲花天猫二店", platform="tmall")
    jd = StoreFactory(brand=lotus, code="lotus-jd", name="莲花京东", platform="jd")
    wechat = StoreFactory(brand=lotus, code="lotus-wechat", name="莲花小程序", platform="wechat")
    rose_tmall = StoreFactory(brand=rose, code="rose-tmall", name="玫瑰天猫", platform="tmall")
    created = at(2025, 1, 1)
    people = {
        key: MemberFactory(name=key, birth_date=dt.date(1990, 1, 1), created_at=created, lifecycle_stage=stage)
        for key, stage in [("A", "loyal"), ("B", "active"), ("C", "at_risk"), ("D", "prospect"), ("E", "active"),
                           ("F", "lapsed"), ("G", "prospect")]
    }  # fmt: skip
    held = {
        "A": [tmall, jd, wechat],
        "B": [tmall, tmall2],
        "C": [tmall, jd],
        "D": [jd],
        "E": [wechat],
        "F": [rose_tmall],
        "G": [tmall, rose_tmall],
    }
    joined = {("A", "lotus-tmall"): at(2026, 1, 10), ("D", "lotus-jd"): at(2025, 6, 1), ("B", "lotus-tmall"): SINCE}
    for key, stores in held.items():
        for store in stores:
            StoreMembership.objects.create(
                member=people[key], store=store, store_member_id=f"{key}-{store.code}",
                joined_at=joined.get((key, store.code), created),
            )  # fmt: skip
    Member.objects.filter(pk=people["E"].pk).update(status=Member.Status.MERGED, merged_into=people["A"])
    people["E"].refresh_from_db()
    return World(
        lotus, rose, tmall, tmall2, jd, wechat, rose_tmall, _purpose(lotus), _purpose(rose, channels=("sms",)), people
    )


STORE_PROOF = {"confirmed_at": "2026-01-01T10:00:00+08:00", "ip": "198.51.100.7", "message_id": "<optin@store.example>"}


def record(world: World, who: str, action: str, when: dt.datetime, *, channel="sms", source="store", brand=None, **kw):
    purpose = world.rose_marketing if brand == "rose" else world.marketing
    consent_services.record_consent(
        member=world.people[who], brand=purpose.brand, purpose=purpose, channel=channel, action=action,
        source_type=source, occurred_at=when, **kw,
    )  # fmt: skip


@pytest.fixture
def ledger(world: World) -> World:
    """Week of Jan 5: opt-ins A sms, B sms, C email (confirmed after a pending request);
    a withdrawal by D in the privacy center. Week of Jan 12: an opt-in by D; withdrawals
    by A and B (unsubscribe links) and C (privacy center). Outside the period or brand:
    A's grant on Jan 4 23:59, a withdrawal at Jan 19 00:00, rose's grant of F."""
    record(world, "A", "granted", at(2026, 1, 4, 23, 59))
    record(world, "A", "granted", at(2026, 1, 5, 10))
    record(world, "B", "granted", at(2026, 1, 6))
    record(world, "C", "requested", at(2026, 1, 7, 9), channel="email")
    # The store ran its own double opt-in and sends the proof (issue 22 item 6).
    record(world, "C", "confirmed", at(2026, 1, 7, 10), channel="email", confirmation=STORE_PROOF)
    record(world, "D", "withdrawn", at(2026, 1, 8), source="privacy_center")
    record(world, "D", "granted", at(2026, 1, 12, 0, 30))
    record(world, "A", "withdrawn", at(2026, 1, 13), source="unsubscribe_link")
    record(world, "C", "withdrawn", at(2026, 1, 14), channel="email", source="privacy_center")
    record(world, "B", "withdrawn", at(2026, 1, 18, 23), source="unsubscribe_link")
    record(world, "G", "withdrawn", at(2026, 1, 19, 0), source="store")
    record(world, "F", "granted", at(2026, 1, 9), brand="rose")
    return world


@pytest.fixture
def analyst(db):
    """Staff who may see the dashboard (and members), nothing else."""
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    user = UserFactory(username="analyst", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_dashboard", "view_member"]))
    return see_every_brand(user)

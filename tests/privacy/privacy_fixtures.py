"""Fixtures of the privacy center tests (imported by tests/consent/test_privacy_*.py and
tests/e2e): a person a store imported, their account, and a second person to attack."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.utils import timezone

from consent import services
from consent.models import Action, DataUsage, Notice, Purpose, SourceType
from members.identities import store_member_value
from members.models import Identity, StoreMembership
from privacy import sms
from privacy.models import PrivacyAccount
from tests.factories import MemberFactory, OrderFactory, UserFactory
from webhooks import services as webhook_services
from webhooks.models import Subscription

CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


@pytest.fixture(autouse=True)
def fresh_rate_limits_and_sms():
    cache.clear()  # allauth's rate limits live in the cache
    sms.outbox.clear()
    yield
    sms.outbox.clear()


def imported_member(store, *, phone: str, email: str, name: str = "王小花", store_member_id: str = "T1"):
    member = MemberFactory(name=name, phone=phone, email=email, locale="zh-hans", city="杭州", province="浙江")
    Identity.objects.create(member=member, kind="phone", value=phone, store=store)
    Identity.objects.create(member=member, kind="email", value=email, store=store)
    Identity.objects.create(
        member=member, kind="store_member", value=store_member_value(store.pk, store_member_id), store=store
    )
    StoreMembership.objects.create(
        member=member, store=store, store_member_id=store_member_id, tier="金卡", points=1200,
        joined_at=timezone.now() - dt.timedelta(days=400),
    )  # fmt: skip
    return member


def member_known_by(store, *, name: str, store_member_id: str, phone: str = "", email: str = ""):
    """A person a store imported with only a phone, or only an e-mail address."""
    member = MemberFactory(name=name, phone=phone, email=email, city="成都", province="四川")
    for kind, value in (("phone", phone), ("email", email)):
        if value:
            Identity.objects.create(member=member, kind=kind, value=value, store=store)
    Identity.objects.create(
        member=member, kind="store_member", value=store_member_value(store.pk, store_member_id), store=store
    )
    StoreMembership.objects.create(member=member, store=store, store_member_id=store_member_id, tier="银卡")
    return member


@pytest.fixture
def purposes(brand, marketing_purpose):
    """Marketing (SMS, e-mail) plus a separate-consent purpose, each with a notice."""
    sharing = Purpose.objects.create(
        brand=brand, code="third_party_sharing", name="向第三方提供", channels=[], separate_consent=True
    )
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=sharing, locale="zh-hans", title="第三方告知", body="v1"
    )
    return {"marketing": marketing_purpose, "sharing": sharing}


@pytest.fixture
def shopper(tmall, purposes):
    """A person a Tmall store imported: phone, e-mail, membership, orders, SMS marketing on."""
    member = imported_member(tmall, phone="+8613800138000", email="xiaohua@example.com")
    for k in range(3):
        OrderFactory(store=tmall, member=member, external_id=f"T-{k}")
    services.record_consent(
        member=member, brand=tmall.brand, purpose=purposes["marketing"], channel="sms", action=Action.GRANTED,
        source_type=SourceType.STORE, store=tmall,
    )  # fmt: skip
    DataUsage.objects.create(
        member=member, brand=tmall.brand, purpose=purposes["marketing"], channel="sms",
        context_type="segment_export", context_ref="双11 会员召回",
    )  # fmt: skip
    return member


@pytest.fixture
def other_shopper(jd, purposes):
    member = imported_member(jd, phone="+8613900139000", email="other@example.com", name="李四", store_member_id="J9")
    services.record_consent(
        member=member, brand=jd.brand, purpose=purposes["marketing"], channel="sms", action=Action.GRANTED,
        source_type=SourceType.STORE, store=jd,
    )  # fmt: skip
    return member


@pytest.fixture
def account(shopper):
    user = UserFactory(username="xiaohua", email="xiaohua@example.com")
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=user, email="xiaohua@example.com", verified=True, primary=True)
    return PrivacyAccount.objects.create(user=user, member=shopper, linked_at=timezone.now())


@pytest.fixture
def signed_in(client, account):
    client.force_login(account.user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def signed_in_english(signed_in):
    """The signed-in shopper's client, reading the pages in English."""
    signed_in.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return signed_in


@pytest.fixture
def subscriber(brand):
    """A receiver of the brand's consent changes."""
    webhook_services.forget_subscribers()  # ids repeat between tests: no cached answer of another test
    yield Subscription.objects.create(
        brand=brand, url="https://hooks.example.com/cdp", secret="s3cret", events=["consent.changed"]
    )
    webhook_services.forget_subscribers()


def code_from(text: str) -> str:
    match = CODE_RE.search(text)
    assert match, text
    return match.group(1)

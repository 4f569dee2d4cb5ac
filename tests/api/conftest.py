"""API fixtures: keys of our brand and of another brand, a client that sends them, a
marketing purpose with a notice, and members of each brand."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from cdp import audit
from cdp.api_keys import issue_api_key
from cdp.models import ApiKey, ApiKeyScope
from consent import services as consent_services
from consent.models import Notice, Purpose
from members.models import Member, StoreMembership
from tests.factories import BrandFactory, MemberFactory, StoreFactory, store_profile

ALL_SCOPES = list(ApiKeyScope.values)


def make_key(brand, *, scopes=None, store=None, name="test key", **extra) -> tuple[ApiKey, str]:
    return issue_api_key(
        ApiKey(name=name, brand=brand, store=store, scopes=list(scopes or ALL_SCOPES), **extra),
        actor=audit.Actor(type="system", label="tests"),
    )


def client_for(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture(autouse=True)
def _fresh_caches():
    from consent import api as consent_api

    cache.clear()
    consent_api._purposes.clear()
    yield
    consent_api._purposes.clear()


@pytest.fixture
def api(brand, tmall):
    """A client with an all-scope key of ``brand`` (not bound to a store)."""
    _key, raw = make_key(brand)
    return client_for(raw)


@pytest.fixture
def api_key(api):
    return ApiKey.objects.get(name="test key")


@pytest.fixture
def other_brand(db):
    return BrandFactory(code="peony", name="牡丹")


@pytest.fixture
def other_store(other_brand):
    return StoreFactory(brand=other_brand, code="peony-jd", platform="jd")


@pytest.fixture
def other_api(other_brand, other_store):
    """Another brand's all-scope key."""
    _key, raw = make_key(other_brand, name="other brand key")
    return client_for(raw)


def add_purpose(brand, code="marketing", channels=("sms", "email", "wechat"), is_marketing=True) -> Purpose:
    purpose = Purpose.objects.create(
        brand=brand, code=code, name=code, channels=list(channels), is_marketing=is_marketing
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title=code, body="v1"
    )
    return purpose


@pytest.fixture
def marketing(brand):
    return add_purpose(brand)


@pytest.fixture
def other_marketing(other_brand):
    return add_purpose(other_brand)


def member_of(store, **fields) -> Member:
    from members.identities import store_member_value
    from members.models import Identity

    member = MemberFactory(**fields)
    StoreMembership.objects.create(member=member, store=store, store_member_id=f"S{member.pk}", **store_profile(member))
    Identity.objects.bulk_create(
        [
            Identity(member=member, kind="phone", value=member.phone, store=store),
            Identity(member=member, kind="email", value=member.email, store=store),
            Identity(member=member, kind="store_member", value=store_member_value(store.pk, f"S{member.pk}")),
        ]
    )
    return member


@pytest.fixture
def alice(tmall):
    return member_of(tmall, name="Alice", phone="+8613800138000", email="alice@example.com")


@pytest.fixture
def olga(other_store):
    """A member of the other brand only."""
    return member_of(other_store, name="Olga", phone="+8613900139000", email="olga@example.com")

"""Scope and brand isolation for every endpoint: a key without the endpoint's scope gets
403; another brand's key with every scope never sees or changes this brand's data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from cdp.models import ApiKeyScope
from consent.models import ConsentEvent, Preference
from members.models import Member, Order
from segments.models import SegmentBuild
from tests.segments.conftest import make_segment
from webhooks import services as webhook_services
from webhooks.models import Subscription

from .conftest import ALL_SCOPES, client_for, make_key

pytestmark = pytest.mark.django_db


@dataclass
class World:
    alice: Member
    segment: Any
    subscription: Subscription


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # formatted with the World
    scope: str
    body: Any = None
    query: dict | None = None


ENDPOINTS = [
    Endpoint("member lookup", "get", "/api/v1/members/", ApiKeyScope.MEMBERS_READ, query={"phone": "13800138000"}),
    Endpoint("member upsert", "post", "/api/v1/members/", ApiKeyScope.MEMBERS_WRITE,
             body={"store": "lotus-tmall", "member_id": "NEW1", "phone": "13800138000"}),
    Endpoint("member detail", "get", "/api/v1/members/{w.alice.pk}/", ApiKeyScope.MEMBERS_READ),
    Endpoint("consent check", "get", "/api/v1/consent/check", ApiKeyScope.CONSENT_READ,
             query={"phone": "13800138000", "purpose": "marketing", "channel": "sms"}),
    Endpoint("consent events", "post", "/api/v1/consent-events/", ApiKeyScope.CONSENT_WRITE,
             body={"external_id": "iso-1", "phone": "13800138000", "purpose": "marketing", "channel": "sms",
                   "action": "withdrawn", "occurred_at": "2026-01-01T00:00:00Z"}),
    Endpoint("preferences get", "get", "/api/v1/members/{w.alice.pk}/preferences/", ApiKeyScope.CONSENT_READ),
    Endpoint("preferences put", "put", "/api/v1/members/{w.alice.pk}/preferences/", ApiKeyScope.CONSENT_WRITE,
             body={"max_per_week": 1}),
    Endpoint("orders", "post", "/api/v1/orders/", ApiKeyScope.ORDERS_WRITE,
             body={"store": "lotus-tmall", "order_id": "ISO-1", "amount": "1.00", "placed_at": "2026-01-01T00:00:00Z"}),
    Endpoint("segments", "get", "/api/v1/segments/", ApiKeyScope.SEGMENTS_READ),
    Endpoint("segment build", "post", "/api/v1/segments/{w.segment.slug}/builds/", ApiKeyScope.SEGMENTS_READ),
    Endpoint("segment members", "get", "/api/v1/segments/{w.segment.slug}/members/", ApiKeyScope.SEGMENTS_READ),
    Endpoint("webhooks list", "get", "/api/v1/webhooks/", ApiKeyScope.WEBHOOKS_MANAGE),
    Endpoint("webhooks create", "post", "/api/v1/webhooks/", ApiKeyScope.WEBHOOKS_MANAGE,
             body={"url": "http://127.0.0.1:9/x", "events": ["consent.changed"]}),
    Endpoint("webhooks delete", "delete", "/api/v1/webhooks/{w.subscription.pk}/", ApiKeyScope.WEBHOOKS_MANAGE),
]  # fmt: skip


@pytest.fixture
def world(brand, tmall, marketing, alice) -> World:
    segment = make_segment(brand, marketing, {"all": []}, slug="everyone")
    subscription, _secret = webhook_services.create_subscription(
        brand=brand, url="http://127.0.0.1:9/ours", events=["consent.changed"]
    )
    return World(alice=alice, segment=segment, subscription=subscription)


def call(client, endpoint: Endpoint, world: World):
    path = endpoint.path.format(w=world)
    method = getattr(client, endpoint.method)
    if endpoint.method == "get":
        return method(path, endpoint.query or {})
    return method(path, endpoint.body, format="json") if endpoint.body is not None else method(path)


def test_every_api_url_is_in_the_matrix():
    from django.urls import get_resolver

    patterns = {str(p.pattern) for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/"}  # the includes
    assert patterns
    from consent import api as consent_api
    from members import api as members_api
    from segments import api as segments_api
    from webhooks import api as webhooks_api

    routes = [str(p.pattern) for m in (members_api, consent_api, segments_api, webhooks_api) for p in m.urlpatterns]
    covered = {e.path.replace("/api/v1/", "").split("{")[0] for e in ENDPOINTS}
    for route in routes:
        assert any(route.split("<")[0] == c.split("{")[0] for c in covered), route


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_key_without_the_scope_is_refused(endpoint, world, brand):
    _key, raw = make_key(brand, scopes=[s for s in ALL_SCOPES if s != endpoint.scope], name="narrow")
    response = call(client_for(raw), endpoint, world)
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert endpoint.scope in response.json()["detail"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_key_with_only_the_scope_is_let_in(endpoint, world, brand):
    _key, raw = make_key(brand, scopes=[endpoint.scope], name="exact")
    response = call(client_for(raw), endpoint, world)
    assert response.status_code < 400 or response.status_code == 409, response.content  # 409: segment not built


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_another_brands_key_sees_and_changes_nothing(endpoint, world, other_brand, other_store, other_marketing):
    _key, raw = make_key(other_brand, name="other brand key")
    before = {
        "orders": Order.objects.count(),
        "events": ConsentEvent.objects.count(),
        "preferences": Preference.objects.count(),
        "builds": SegmentBuild.objects.count(),
        "subscriptions": Subscription.objects.filter(is_active=True).count(),
        "alice": Member.objects.filter(pk=world.alice.pk).values().get(),
    }
    response = call(client_for(raw), endpoint, world)
    assert response.status_code in (200, 201, 400, 404), (response.status_code, response.content)
    body = response.json()
    body.pop("instance", None)  # a problem echoes the request path, which the caller wrote
    text = json.dumps(body, ensure_ascii=False)
    # Nothing of ours leaks into the answer…
    assert "alice@example.com" not in text and "+8613800138000" not in text and "Alice" not in text
    assert "everyone" not in text and "/ours" not in text
    if response.status_code == 200 and "results" in body:
        assert all(item.get("id") != world.alice.pk for item in body["results"])
    if endpoint.name == "consent check":
        assert body == {"allowed": False, "reason": "no_consent", "as_of": None}
    # …and nothing of ours changed.
    assert Order.objects.filter(store__brand=world.alice.memberships.get().store.brand).count() == before["orders"]
    assert ConsentEvent.objects.filter(member=world.alice).count() == 0
    assert Preference.objects.filter(member=world.alice).count() == 0
    assert SegmentBuild.objects.filter(segment=world.segment).count() == 0
    assert world.subscription.__class__.objects.get(pk=world.subscription.pk).is_active
    assert Member.objects.filter(pk=world.alice.pk).values().get() == before["alice"]

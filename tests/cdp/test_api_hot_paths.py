"""The API's hot reads (issue 27): a known key costs no query for a few seconds, a
revocation elsewhere takes effect within that time, the throttle is one Redis round trip,
and the consent check and the member read write nothing and take one and two queries."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from redis import connection as redis_connection

from cdp import api_keys
from cdp.models import ApiKey, AuditLog
from consent.models import DataUsage
from consent.services import record_consent
from members import api as members_api
from members.api import member_for_key
from members.brand_view import brand_views
from members.models import Member, StoreMembership
from members.queries import brand_member_read
from members.services import merge_members
from tests.api.conftest import add_purpose, client_for, make_key, member_of
from tests.factories import BrandFactory, StoreFactory

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture(autouse=True)
def _no_cached_keys():
    api_keys.forget_cached_keys()
    yield
    api_keys.forget_cached_keys()


@pytest.fixture
def alice(tmall):
    return member_of(tmall, name="Alice", phone="+8613800138000", email="alice@example.com")


@pytest.fixture
def marketing(brand):
    return add_purpose(brand)


@pytest.fixture
def key_and_client(brand, tmall):
    key, raw = make_key(brand)
    return key, client_for(raw)


class Clock:
    """``time.monotonic`` as cdp.api_keys sees it, moved on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(api_keys.time, "monotonic", clock)
    return clock


def test_a_known_key_costs_no_query_within_the_cache_time(key_and_client, alice):
    _key, api = key_and_client
    with CaptureQueriesContext(connection) as first:
        assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    assert any("cdp_apikey" in q["sql"] for q in first.captured_queries)
    with CaptureQueriesContext(connection) as second:
        assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    assert not any("cdp_apikey" in q["sql"] for q in second.captured_queries)


def test_a_key_revoked_elsewhere_stops_working_within_the_cache_time(key_and_client, alice, clock, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    key, api = key_and_client
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    # Another web process revokes it: this one still holds the key it found.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    clock.now += 4
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    clock.now += 2
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 401


def test_revoking_in_this_process_takes_effect_at_once(key_and_client, alice):
    key, api = key_and_client
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    api_keys.revoke_api_key(key)
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 401


def test_no_cache_looks_the_key_up_every_time(key_and_client, alice, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    key, api = key_and_client
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 401


def test_a_cached_key_still_expires_on_time(brand, tmall, alice, monkeypatch):
    _key, raw = make_key(brand, expires_at=timezone.now() + timezone.timedelta(hours=1))
    api = client_for(raw)
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    later = timezone.now() + timezone.timedelta(hours=2)
    monkeypatch.setattr(api_keys.timezone, "now", lambda: later)
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 401


def test_an_unknown_key_is_never_remembered(brand, tmall, alice):
    assert client_for("cdp_00000000_unknown").get(f"/api/v1/members/{alice.pk}/").status_code == 401
    assert not api_keys._cached


def test_the_check_is_one_query_and_writes_nothing(key_and_client, marketing, alice):
    _key, api = key_and_client
    record_consent(member=alice, brand=marketing.brand, purpose=marketing, channel="sms", action="granted",
                   source_type="store")  # fmt: skip
    params = {"purpose": "marketing", "channel": "sms", "phone": "13800138000"}
    assert api.get("/api/v1/consent/check", params).json()["allowed"] is True  # warm: key, last use, purpose
    audit_rows, usage_rows = AuditLog.objects.count(), DataUsage.objects.count()
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/v1/consent/check", params).json()["allowed"] is True
        assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]
    assert (AuditLog.objects.count(), DataUsage.objects.count()) == (audit_rows, usage_rows)


def test_the_member_read_is_two_queries_and_writes_nothing(key_and_client, alice, django_assert_max_num_queries):
    _key, api = key_and_client
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200  # warm: the key and its last use
    audit_rows, usage_rows = AuditLog.objects.count(), DataUsage.objects.count()
    for _ in range(3):
        with django_assert_max_num_queries(2) as queries:
            assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
        assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert (AuditLog.objects.count(), DataUsage.objects.count()) == (audit_rows, usage_rows)


def _old_read(key: ApiKey, pk: int) -> dict:
    member = member_for_key(key, pk)
    return members_api.MemberOutput(brand_views([member], key.brand_id)[0]).data


@pytest.fixture
def shopper(brand, tmall, jd):
    """A person at two of the brand's stores and at another brand's store."""
    person = member_of(tmall, name="Bo", phone="+8613700137000", email="bo@example.com")
    StoreMembership.objects.create(member=person, store=jd, store_member_id="J1", tier="gold", points=7,
                                   profile={"city": "杭州"}, profile_observed_at=timezone.now())  # fmt: skip
    other = StoreFactory(brand=BrandFactory(code="peony"), code="peony-jd", platform="jd")
    StoreMembership.objects.create(member=person, store=other, store_member_id="P1", profile={"city": "北京"})
    return person


def test_the_member_read_answers_as_the_brand_view_does(key_and_client, shopper, tmall):
    key, api = key_and_client
    body = api.get(f"/api/v1/members/{shopper.pk}/").json()
    assert body == _old_read(key, shopper.pk)
    assert [m["store"] for m in body["memberships"]] == [m.store.code for m in StoreMembership.objects.filter(
        member=shopper, store__brand=key.brand).order_by("store__name")]  # fmt: skip
    # Merged: the absorbed id answers with the survivor.
    absorbed = member_of(tmall, name="Bo again", phone="+8613700137001", email="bo2@example.com")
    assert merge_members(shopper, absorbed, rule="phone", matched_value="+8613700137000") is not None
    assert api.get(f"/api/v1/members/{absorbed.pk}/").json() == _old_read(key, shopper.pk)


def test_the_member_read_hides_what_the_brand_may_not_see(key_and_client, shopper):
    _key, api = key_and_client
    outsider = member_of(StoreMembership.objects.get(store_member_id="P1").store, name="Olga", phone="+8613900139000",
                         email="olga@example.com")  # fmt: skip
    assert api.get(f"/api/v1/members/{outsider.pk}/").status_code == 404
    assert api.get("/api/v1/members/999999999/").status_code == 404
    Member.objects.filter(pk=shopper.pk).update(status=Member.Status.ERASED)
    assert api.get(f"/api/v1/members/{shopper.pk}/").status_code == 404


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://…")
def test_the_throttle_is_one_redis_round_trip(key_and_client, alice, settings, monkeypatch):
    settings.CACHES = {
        "default": {"BACKEND": "cdp.cache.ResilientRedisCache", "LOCATION": os.environ["REDIS_URL"],
                    "KEY_PREFIX": "cdp-hot-path-test"},
    }  # fmt: skip
    settings.API_THROTTLE_RATE = "100/min"
    _key, api = key_and_client
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    trips = []
    send = redis_connection.Connection.send_packed_command

    def counted(self, command, check_health=True):
        trips.append(command)
        return send(self, command, check_health)

    monkeypatch.setattr(redis_connection.Connection, "send_packed_command", counted)
    assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    assert len(trips) == 1


def test_the_member_read_of_an_id_out_of_range_is_nobody(brand, tmall, alice):
    assert brand_member_read(brand.pk, alice.pk).brand_memberships[0].store.code == tmall.code
    assert brand_member_read(brand.pk, 0) is None
    assert brand_member_read(brand.pk, 2**63) is None
    assert brand_member_read(brand.pk + 1000, alice.pk) is None

"""Redis down degrades, it does not break (issue 22 item 3). The cache points at a closed
port (or at a server that accepts and never answers): the consent check gives the same
answer, an API key is still rate-limited (per process), the privacy center signs people
in by code with its rate limits, the admin and its dashboard keep working from the
database, and the log says Redis is away, once, not once per request."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from django.core import mail
from django.core.cache import cache, caches

from cdp import cache as resilient
from consent import services
from tests.api.conftest import client_for, make_key
from tests.consent.fixtures import *  # noqa: F403 - the purposes the shopper consented to
from tests.privacy.privacy_fixtures import *  # noqa: F403 - the shopper, signed in by code
from tests.privacy.privacy_fixtures import code_from

pytestmark = pytest.mark.django_db

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused
SIGN_IN = "/privacy/accounts/login/code/"


def redis_at(location: str, **options) -> dict:
    return {
        "default": {
            "BACKEND": "cdp.cache.ResilientRedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "cdp",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2, **options},
        }
    }


@pytest.fixture
def redis_down(settings):
    """The cache on a Redis that refuses connections. Changing CACHES makes Django build
    new cache objects, and cdp.cache forget what it knew (as a new process would)."""
    settings.CACHES = redis_at(CLOSED)
    cache.clear()


@pytest.fixture
def hung_redis(settings):
    """A "Redis" that accepts connections and never answers (the kernel completes the
    handshake; nobody reads): each attempt costs the socket time-out, the worst case."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    settings.CACHES = redis_at(f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    yield
    server.close()


def check(api, phone="13800138000"):
    return api.get("/api/v1/consent/check", {"purpose": "marketing", "channel": "sms", "phone": phone})


def test_consent_check_gives_the_same_answer_and_the_log_says_why(settings, shopper, brand, caplog):
    _key, raw = make_key(brand)
    api = client_for(raw)
    with_redis = [check(api).json(), check(api, phone="13912345678").json()]
    assert with_redis[0]["allowed"] is True and with_redis[1]["reason"] == "no_consent"

    settings.CACHES = redis_at(CLOSED)
    with caplog.at_level(logging.WARNING, logger="cdp.cache"):
        responses = [check(api), check(api, phone="13912345678"), check(api)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json() for r in responses[:2]] == with_redis
    (warning,) = [r for r in caplog.records if r.name == "cdp.cache"]  # once, not per request
    assert warning.levelno == logging.WARNING
    assert "redis://127.0.0.1:1/0 is unreachable" in warning.getMessage()
    assert "ConnectionError" in warning.getMessage()


def test_a_withdrawal_is_answered_at_once(redis_down, shopper, brand, purposes):
    """Nothing consent-related is cached: the database answers every check."""
    _key, raw = make_key(brand)
    api = client_for(raw)
    assert check(api).json()["allowed"] is True
    services.record_consent(member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
                            action="withdrawn", source_type="store")  # fmt: skip
    assert check(api).json()["reason"] == "withdrawn"


def test_an_api_key_is_still_rate_limited_per_process(redis_down, settings, shopper, brand):
    _k1, raw1 = make_key(brand, name="one")
    _k2, raw2 = make_key(brand, name="two")
    settings.API_THROTTLE_RATE = "3/hour"
    codes = [check(client_for(raw1)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = check(client_for(raw1))
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 3600
    assert refused["Content-Type"] == "application/problem+json"
    assert check(client_for(raw2)).status_code == 200  # per key, as with Redis


def test_privacy_center_signs_in_by_code_and_shows_the_person(redis_down, client, shopper):
    assert client.get(SIGN_IN).status_code == 200
    response = client.post(SIGN_IN, {"email": "xiaohua@example.com"})
    assert response.status_code == 302
    response = client.post(response["Location"], {"code": code_from(mail.outbox[-1].body)}, follow=True)
    assert response.status_code == 200
    page = client.get("/privacy/").content.decode()
    for text in ("莲花天猫旗舰店", "金卡", "王小花", "xiaohua@example.com"):
        assert text in page
    assert client.get("/privacy/consents/").status_code == 200


def test_sign_in_codes_stay_rate_limited(redis_down, client, shopper):
    """allauth's limits (3 codes per address in 5 minutes) hold per process."""
    for _ in range(3):
        assert client.post(SIGN_IN, {"email": "xiaohua@example.com"}).status_code == 302
        client.logout()
    sent = len(mail.outbox)
    response = client.post(SIGN_IN, {"email": "xiaohua@example.com"})
    assert response.status_code == 429  # the privacy center's "too many requests" page
    assert len(mail.outbox) == sent


def test_admin_signs_in_and_shows_the_dashboard(redis_down, client, superuser, shopper, brand):
    superuser.set_password("a long Passphrase 42")
    superuser.save()
    response = client.post("/admin/login/", {"username": "root", "password": "a long Passphrase 42"})
    assert response.status_code == 302
    assert 'id="dashboard-summary"' in client.get("/admin/").content.decode()
    response = client.get("/admin/insights/dashboard/", {"brand": brand.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="dashboard"' in page and "莲花天猫旗舰店" in page
    assert client.get("/admin/members/member/").status_code == 200


def test_dashboard_refresh_is_still_claimed_once(redis_down, client, superuser, shopper, brand):
    """The refresh button recomputes at most once per DASHBOARD_REFRESH_SECONDS (per process
    while Redis is away)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    client.force_login(superuser)
    first = client.post("/admin/insights/dashboard/refresh/", {"brand": brand.pk}, follow=True)
    assert first.status_code == 200 and "recomputed less than" not in first.content.decode()
    second = client.post("/admin/insights/dashboard/refresh/", {"brand": brand.pk}, follow=True)
    assert second.status_code == 200
    assert "were recomputed less than 2 minutes ago" in second.content.decode()


def test_a_hung_redis_costs_one_time_out_then_nothing(hung_redis, caplog):
    """After a failure Redis is skipped for RETRY_SECONDS by every thread of the process
    (Django builds a cache object per thread; Redis's state they share)."""
    with caplog.at_level(logging.WARNING, logger="cdp.cache"):
        started = time.perf_counter()
        assert cache.get("anything", "default") == "default"
        first = time.perf_counter() - started

        def many() -> None:
            for n in range(200):
                caches["default"].set(f"key{n}", n)
                assert caches["default"].get(f"key{n}") == n  # from the process's memory

        started = time.perf_counter()
        many()
        here = time.perf_counter() - started
        started = time.perf_counter()
        thread = threading.Thread(target=many)
        thread.start()
        thread.join()
        elsewhere = time.perf_counter() - started
    assert 0.15 <= first < 1.0  # the 0.2 s socket time-out, and no retries
    assert here < 0.15 and elsewhere < 0.15  # 400 operations cost less than one time-out
    assert len([r for r in caplog.records if "TimeoutError" in r.getMessage()]) == 1


@pytest.mark.redis
def test_with_redis_the_throttle_counts_in_redis(settings, shopper, brand):
    """The normal case: the counter is Redis's (shared by every process), not memory's."""
    _key, raw = make_key(brand)
    api = client_for(raw)
    settings.API_THROTTLE_RATE = "3/hour"
    assert [check(api).status_code for _ in range(4)] == [200, 200, 200, 429]
    backend = caches["default"]
    assert isinstance(backend, resilient.ResilientRedisCache)
    client = backend._cache.get_client(write=True)
    counters = client.keys("cdp:*api-throttle:*")
    assert len(counters) == 1 and int(client.get(counters[0])) == 4
    assert 0 < client.ttl(counters[0]) <= 3601
    assert backend._fallback.get(counters[0].decode().split(":", 2)[2]) is None


@pytest.mark.redis
def test_redis_is_used_again_once_it_answers(settings, caplog, monkeypatch):
    from django.core.cache.backends.redis import RedisCacheClient

    settings.CACHES = redis_at(settings.CACHES["default"]["LOCATION"], RETRY_SECONDS=0.5)
    cache.clear()
    real_get = RedisCacheClient.get
    down = True

    def flaky_get(self, key, default):
        if down:
            from redis.exceptions import ConnectionError

            raise ConnectionError("Connection refused")
        return real_get(self, key, default)

    monkeypatch.setattr(RedisCacheClient, "get", flaky_get)
    with caplog.at_level(logging.INFO, logger="cdp.cache"):
        cache.set("answer", 42)  # into Redis: only reads fail
        assert cache.get("answer") is None  # Redis away: a miss in memory
        cache.set("answer", 43)  # within RETRY_SECONDS: memory
        down = False
        time.sleep(0.6)
        assert cache.get("answer") == 42  # Redis again
    assert caches["default"]._fallback.get("answer") == 43
    messages = [r.getMessage() for r in caplog.records if r.name == "cdp.cache"]
    assert len(messages) == 2 and "unreachable" in messages[0] and "answers again" in messages[1]

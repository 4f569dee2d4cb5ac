"""API keys: issued once, stored hashed, scoped, expiring, revocable, throttled."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from cdp.api_keys import revoke_api_key
from cdp.models import ApiKey, AuditLog

from .conftest import client_for, make_key

pytestmark = pytest.mark.django_db


def test_key_is_stored_as_a_hash_with_a_visible_prefix(brand):
    key, raw = make_key(brand)
    assert raw.startswith(key.prefix + "_")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert AuditLog.objects.filter(action="api_key.issued", object_id=str(key.pk)).exists()


def test_no_key_is_401_problem(tmall):
    response = APIClient().get("/api/v1/members/?phone=13800138000")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer cdp_00000000_wrong", "Bearer", "Bearer a b"])
def test_bad_keys_are_401(tmall, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/members/?phone=13800138000")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_revoked_and_expired_keys_stop_working(brand, tmall, alice):
    key, raw = make_key(brand)
    client = client_for(raw)
    assert client.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    revoke_api_key(key)
    assert client.get(f"/api/v1/members/{alice.pk}/").status_code == 401
    _expired, raw2 = make_key(brand, name="expired", expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client_for(raw2).get(f"/api/v1/members/{alice.pk}/").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(brand, tmall, alice, django_assert_num_queries):
    key, raw = make_key(brand)
    client = client_for(raw)
    client.get(f"/api/v1/members/{alice.pk}/")
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    client.get(f"/api/v1/members/{alice.pk}/")
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


def test_throttle_answers_429_with_retry_after(api, alice):
    with override_settings(API_THROTTLE_RATE="3/min"):
        codes = [api.get(f"/api/v1/members/{alice.pk}/").status_code for _ in range(4)]
        response = api.get(f"/api/v1/members/{alice.pk}/")
    assert codes == [200, 200, 200, 429]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Content-Type"] == "application/problem+json"


def test_throttle_is_per_key(brand, tmall, alice):
    _k1, raw1 = make_key(brand, name="one")
    _k2, raw2 = make_key(brand, name="two")
    with override_settings(API_THROTTLE_RATE="1/min"):
        assert client_for(raw1).get(f"/api/v1/members/{alice.pk}/").status_code == 200
        assert client_for(raw1).get(f"/api/v1/members/{alice.pk}/").status_code == 429
        assert client_for(raw2).get(f"/api/v1/members/{alice.pk}/").status_code == 200


def test_create_api_key_command_prints_the_key_last(brand, tmall):
    out = StringIO()
    call_command(
        "create_api_key", "--brand", "lotus", "--store", "lotus-tmall", "--scopes", "consent:read,members:read",
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(key_hash=hashlib.sha256(raw.encode()).hexdigest())
    assert key.store == tmall and key.scopes == ["consent:read", "members:read"]


@pytest.mark.parametrize(
    "args",
    [
        ["--brand", "nope", "--scopes", "members:read"],
        ["--brand", "lotus", "--scopes", "members:fly"],
        ["--brand", "lotus", "--store", "peony-jd", "--scopes", "members:read"],
    ],
)
def test_create_api_key_command_refuses_bad_input(brand, other_store, args):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=StringIO(), stderr=StringIO())


def test_admin_shows_the_key_once(client, superuser, brand, tmall):
    client.force_login(superuser)
    response = client.post(
        "/admin/cdp/apikey/add/",
        {"name": "POS connector", "brand": brand.pk, "store": tmall.pk, "scopes": ["consent:read"]},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="POS connector")
    page = response.content.decode()
    raw = page.split("<code style='user-select:all'>")[1].split("</code>")[0]
    assert hashlib.sha256(raw.encode()).hexdigest() == key.key_hash
    again = client.get(f"/admin/cdp/apikey/{key.pk}/change/").content.decode()
    assert raw not in again and key.prefix in again


def test_audit_rows_name_the_key(api, api_key, tmall):
    response = api.post("/api/v1/members/", {"store": "lotus-tmall", "member_id": "T1", "phone": "13800138001"})
    assert response.status_code == 201, response.json()
    row = AuditLog.objects.get(action="member.created")
    assert row.actor_type == "api_key" and api_key.prefix in row.actor_label


def test_unknown_api_urls_are_problem_details(api):
    response = api.get("/api/v1/members/abc/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/consent/check", "/api/v1/consent-events/", "/api/v1/webhooks/", "application/problem+json"):
        assert path in text
    assert client.get("/api/docs/").status_code == 200

"""Fixtures of the platform-event tests: a brand with its membership agreement (two
versions) and marketing purpose, and a signed push for each platform, built the way the
platform builds it (the recipes of docs/platforms.md, written out here, not imported)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.utils import timezone
from standardwebhooks import Webhook

from consent import services as consent_services
from consent.models import Notice, Purpose
from imports.models import PlatformConnection
from tests.factories import StoreFactory

CHINA = ZoneInfo("Asia/Shanghai")
SECRET = "tm-app-secret-0123456789"
GENERIC_SECRET = "whsec_" + base64.b64encode(b"g" * 32).decode()


@pytest.fixture
def membership_purpose(brand):
    return Purpose.objects.create(brand=brand, code="membership", name="会员服务")


@pytest.fixture
def agreement(brand):
    """The membership agreement: v1 published long ago, v2 (the one stores show) last month."""
    now = timezone.now()
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议", body="v1",
        published_at=now - dt.timedelta(days=400),
    )  # fmt: skip
    return consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议", body="v2",
        published_at=now - dt.timedelta(days=30),
    )  # fmt: skip


@pytest.fixture
def marketing(brand):
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms", "email"], is_marketing=True
    )
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销告知", body="v1",
        published_at=timezone.now() - dt.timedelta(days=400),
    )  # fmt: skip
    return purpose


def connect(store, adapter, membership_purpose, agreement, *, secret=SECRET, app_id="app-1"):
    return PlatformConnection.objects.create(
        store=store, adapter=adapter, app_id=app_id, secret=secret, agreement_purpose=membership_purpose,
        agreement_notice=agreement,
    )  # fmt: skip


@pytest.fixture
def tmall_connection(tmall, membership_purpose, agreement):
    return connect(tmall, "tmall", membership_purpose, agreement)


@pytest.fixture
def douyin_connection(brand, membership_purpose, agreement):
    store = StoreFactory(brand=brand, code="lotus-douyin", name="莲花抖音小店", platform="douyin")
    return connect(store, "douyin", membership_purpose, agreement)


@pytest.fixture
def wechat_connection(wechat, membership_purpose, agreement):
    return connect(wechat, "wechat", membership_purpose, agreement, app_id="gh_lotus")


@pytest.fixture
def generic_connection(brand, membership_purpose, agreement):
    store = StoreFactory(brand=brand, code="lotus-xhs", name="莲花小红书店", platform="xiaohongshu")
    return connect(store, "generic", membership_purpose, agreement, secret=GENERIC_SECRET, app_id="")


def _post(client, url, body, *, apply, **extra):
    """The push, and (``apply``) what the worker does once it commits: apply its events."""
    if not apply:
        return client.post(url, body, content_type="application/json", **extra)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, body, content_type="application/json", **extra)


def china_time(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def tmall_push(client, topic, content, *, msg_id="m-1", secret=SECRET, signed_at=None, app_key="app-1", apply=True):
    body = json.dumps({"msg_id": msg_id, "topic": topic, "content": content}, ensure_ascii=False).encode()
    query = {"app_key": app_key, "timestamp": china_time(signed_at or timezone.now()), "sign_method": "hmac-sha256"}
    text = "".join(f"{k}{query[k]}" for k in sorted(query)).encode() + body
    query["sign"] = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest().upper()
    qs = "&".join(f"{k}={v}" for k, v in query.items()).replace(" ", "%20")
    return _post(client, f"/api/v1/platform-events/lotus-tmall/?{qs}", body, apply=apply)


def douyin_push(client, messages, *, secret=SECRET, app_id="app-1", apply=True):
    body = json.dumps(
        [{"tag": tag, "msg_id": msg_id, "data": json.dumps(data)} for tag, msg_id, data in messages]
    ).encode()
    sign = hmac.new(secret.encode(), app_id.encode() + body + secret.encode(), hashlib.sha256).hexdigest()
    return _post(
        client, "/api/v1/platform-events/lotus-douyin/", body, apply=apply,
        headers={"app-id": app_id, "event-sign": sign, "sign-method": "hmac-sha256"},
    )  # fmt: skip


def wechat_push(client, message, *, token=SECRET, timestamp=None, nonce="n0nce", apply=True):
    body = json.dumps(message, ensure_ascii=False).encode()
    timestamp = str(timestamp or int(timezone.now().timestamp()))
    signature = hashlib.sha1("".join(sorted([token, timestamp, nonce, body.decode()])).encode()).hexdigest()
    url = f"/api/v1/platform-events/lotus-wechat/?timestamp={timestamp}&nonce={nonce}&msg_signature={signature}"
    return _post(client, url, body, apply=apply)


def generic_push(client, message, *, msg_id="msg_1", secret=GENERIC_SECRET, apply=True):
    body = json.dumps(message)
    now = timezone.now()
    signature = Webhook(secret).sign(msg_id, now, body)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    return _post(client, "/api/v1/platform-events/lotus-xhs/", body, apply=apply, headers=headers)

"""One adapter per platform: check the push's signature with the store's shared secret,
then read the membership events in it (docs/platforms.md shows each payload).

An adapter answers ``read(connection, push) -> Reading``: the membership events to apply
and the event types it skipped. ``SignatureError`` means the push is not
the platform's (401); ``PayloadError`` that it is signed but unreadable (400). Events of
types that are not about membership are skipped: platforms push many kinds to one URL and
retry whatever is not answered with a 2xx.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .models import PlatformConnection, PlatformEvent

TOLERANCE_SECONDS = 300  # how far a signed timestamp may be from our clock
CHINA = ZoneInfo("Asia/Shanghai")  # Tmall writes local times without an offset
Kind = PlatformEvent.Kind


class SignatureError(Exception):
    """The push is not signed by the platform with this store's secret."""


class PayloadError(Exception):
    """A signed push whose content cannot be read; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Push:
    """What reached the endpoint: headers (lower-case names), query parameters, body."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    now: dt.datetime = field(default_factory=timezone.now)


@dataclass(frozen=True)
class MembershipEvent:
    """One membership event read from a push. ``values`` are ``StoreRecord.clean`` values."""

    event_id: str
    kind: str
    occurred_at: dt.datetime
    values: dict[str, Any]


@dataclass
class Reading:
    events: list[MembershipEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # event types that are not about membership


# --- Signatures ----------------------------------------------------------------------------


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def _fresh(moment: dt.datetime, now: dt.datetime) -> None:
    if abs((now - moment).total_seconds()) > TOLERANCE_SECONDS:
        raise SignatureError(
            f"The signed timestamp is more than {TOLERANCE_SECONDS} s from the server's clock: "
            "an old push replayed, or the sender's clock is wrong."
        )


def _header(push: Push, name: str) -> str:
    value = push.headers.get(name.lower(), "")
    if not value:
        raise SignatureError(f"The push has no {name} header.")
    return value


def _param(push: Push, name: str) -> str:
    value = push.query.get(name, "")
    if not value:
        raise SignatureError(f"The push has no {name!r} query parameter.")
    return value


def _app(connection: PlatformConnection, given: str, what: str) -> None:
    if connection.app_id and given != connection.app_id:
        raise SignatureError(f"The push names {what} {given!r}, not this store's app.")


# --- Reading values ------------------------------------------------------------------------


def _json(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError(where, "is not valid JSON") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(where, "must be a JSON object")
    return value


def _text(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where}.{key}", "is required")
        return ""
    if not isinstance(value, str | int):
        raise PayloadError(f"{where}.{key}", "must be a string")
    return str(value).strip()


def _unix(data: Mapping[str, Any], key: str, where: str) -> dt.datetime:
    value = data.get(key)
    try:
        seconds = int(value)  # type: ignore[arg-type]
        return dt.datetime.fromtimestamp(seconds / 1000 if seconds > 10**11 else seconds, tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise PayloadError(f"{where}.{key}", "must be a Unix time in seconds") from None


def _local_time(data: Mapping[str, Any], key: str, where: str) -> dt.datetime:
    raw = _text(data, key, where, required=True)
    try:
        return dt.datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise PayloadError(f"{where}.{key}", "must be a time like 2026-11-11 20:00:00 (China time)") from None


def _phone(raw: str) -> str:
    """Platforms often pass a masked number (138****8000): that is no number at all."""
    return "" if "*" in raw else raw


def _points(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PayloadError(f"{where}.{key}", "must be a whole number") from None


def _record(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value not in (None, "")}


# --- Tmall / Taobao ------------------------------------------------------------------------

TMALL_TOPICS = {
    "taobao_crm_MemberJoin": Kind.JOINED,
    "taobao_crm_MemberUpdate": Kind.UPDATED,
    "taobao_crm_MemberUnbind": Kind.ENDED,
}


def tmall_signature(secret: str, query: Mapping[str, str], body: bytes) -> str:
    """Taobao's HMAC-SHA256 sign: the query parameters but ``sign``, sorted by name, each
    name followed by its value, then the body; upper-case hex."""
    text = "".join(f"{name}{query[name]}" for name in sorted(query) if name != "sign")
    return hmac.new(secret.encode(), text.encode() + body, hashlib.sha256).hexdigest().upper()


def read_tmall(connection: PlatformConnection, push: Push) -> Reading:
    sign = _param(push, "sign")
    if push.query.get("sign_method", "").lower() != "hmac-sha256":
        raise SignatureError("Tmall pushes must be signed with sign_method=hmac-sha256.")
    if not _same(tmall_signature(connection.secret, push.query, push.body), sign):
        raise SignatureError("The Tmall sign does not match this store's app secret.")
    _app(connection, _param(push, "app_key"), "app_key")
    try:
        signed_at = dt.datetime.strptime(_param(push, "timestamp"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise SignatureError("The 'timestamp' parameter is not a time like 2026-11-11 20:00:00.") from None
    _fresh(signed_at, push.now)
    message = _object(_json(push.body, "body"), "body")
    topic = _text(message, "topic", "body", required=True)
    kind = TMALL_TOPICS.get(topic)
    if kind is None:
        return Reading(skipped=[topic])
    content = _object(message.get("content"), "content")
    time_key = {Kind.JOINED: "join_time", Kind.UPDATED: "modified", Kind.ENDED: "unbind_time"}[kind]
    omid = _text(content, "omid", "content", required=True)
    values = _record(
        store_member_id=omid,
        platform_user_id=_text(content, "ouid", "content"),
        phone=_phone(_text(content, "mobile", "content")),
        name=_text(content, "name", "content"),
        tier=_text(content, "grade_name", "content"),
        points=_points(content, "points", "content"),
    )
    return Reading(
        events=[
            MembershipEvent(
                event_id=_text(message, "msg_id", "body", required=True),
                kind=kind,
                occurred_at=_local_time(content, time_key, "content"),
                values=values,
            )
        ]
    )


# --- Douyin shop ---------------------------------------------------------------------------

DOUYIN_TAGS = {
    "member_join": Kind.JOINED,
    "member_update": Kind.UPDATED,
    "member_unbind": Kind.ENDED,
}


def douyin_signature(app_id: str, secret: str, body: bytes) -> str:
    """The Douyin shop push sign (``sign-method: hmac-sha256``): HMAC-SHA256 with the app
    secret of app id + body + app secret, lower-case hex."""
    return hmac.new(secret.encode(), app_id.encode() + body + secret.encode(), hashlib.sha256).hexdigest()


def read_douyin(connection: PlatformConnection, push: Push) -> Reading:
    sign = _header(push, "event-sign")
    app_id = _header(push, "app-id")
    if push.headers.get("sign-method", "").lower() != "hmac-sha256":
        raise SignatureError("Douyin pushes must carry 'sign-method: hmac-sha256'.")
    if not _same(douyin_signature(app_id, connection.secret, push.body), sign):
        raise SignatureError("The Douyin event-sign does not match this store's app secret.")
    _app(connection, app_id, "app-id")
    messages = _json(push.body, "body")
    if not isinstance(messages, list):
        raise PayloadError("body", "must be a JSON array of messages")
    reading = Reading()
    for index, item in enumerate(messages):
        where = f"[{index}]"
        message = _object(item, where)
        tag = _text(message, "tag", where, required=True)
        kind = DOUYIN_TAGS.get(tag)
        if kind is None:
            reading.skipped.append(tag)
            continue
        data = _object(_json(_text(message, "data", where, required=True), f"{where}.data"), f"{where}.data")
        open_id = _text(data, "open_id", f"{where}.data", required=True)
        values = _record(
            store_member_id=open_id,
            platform_user_id=open_id,
            phone=_phone(_text(data, "mobile", f"{where}.data")),
            tier=_text(data, "level_name", f"{where}.data"),
            points=_points(data, "points", f"{where}.data"),
        )
        reading.events.append(
            MembershipEvent(
                event_id=_text(message, "msg_id", where, required=True),
                kind=kind,
                occurred_at=_unix(data, "event_time", f"{where}.data"),
                values=values,
            )
        )
    return reading


# --- WeChat member cards -------------------------------------------------------------------

WECHAT_EVENTS = {
    "submit_membercard_user_info": Kind.JOINED,  # the card activated: the shopper joined
    "update_member_card": Kind.UPDATED,
    "user_del_card": Kind.ENDED,  # the card deleted from the wallet: 解绑
}


def wechat_signature(token: str, timestamp: str, nonce: str, body: bytes) -> str:
    """WeChat's msg_signature: SHA-1 of the token, timestamp, nonce and message sorted and
    joined (the message being the body the push carries), lower-case hex."""
    parts = sorted([token, timestamp, nonce, body.decode("utf-8", "replace")])
    return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def read_wechat(connection: PlatformConnection, push: Push) -> Reading:
    timestamp, nonce = _param(push, "timestamp"), _param(push, "nonce")
    expected = wechat_signature(connection.secret, timestamp, nonce, push.body)
    if not _same(expected, _param(push, "msg_signature")):
        raise SignatureError("The WeChat msg_signature does not match this store's token.")
    try:
        _fresh(dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC), push.now)
    except (ValueError, OverflowError, OSError):
        raise SignatureError("The 'timestamp' parameter is not a Unix time.") from None
    message = _object(_json(push.body, "body"), "body")
    _app(connection, _text(message, "ToUserName", "body"), "ToUserName")
    event = _text(message, "Event", "body", required=True)
    kind = WECHAT_EVENTS.get(event)
    if kind is None:
        return Reading(skipped=[event])
    open_id = _text(message, "FromUserName", "body", required=True)
    code = _text(message, "UserCardCode", "body", required=True)
    created = _text(message, "CreateTime", "body", required=True)
    # WeChat events carry no id: WeChat tells receivers to de-duplicate on the sender and
    # the creation time. Hashed, so that no open id is kept in the events table.
    event_id = "wx-" + hashlib.sha256(f"{open_id}|{created}|{event}|{code}".encode()).hexdigest()[:40]
    values = _record(
        store_member_id=code,
        platform_user_id=open_id,
        wechat_unionid=_text(message, "UnionId", "body"),
        phone=_phone(_text(message, "Mobile", "body")),
        points=_points(message, "Bonus", "body"),
    )
    return Reading(events=[MembershipEvent(event_id, kind, _unix(message, "CreateTime", "body"), values)])


# --- Generic: Standard Webhooks ------------------------------------------------------------

GENERIC_TYPES = {
    "membership.joined": Kind.JOINED,
    "membership.updated": Kind.UPDATED,
    "membership.ended": Kind.ENDED,
}


def read_generic(connection: PlatformConnection, push: Push) -> Reading:
    try:
        Webhook(connection.secret).verify(push.body, dict(push.headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise SignatureError(f"The Standard Webhooks signature does not verify: {exc}.") from None
    message = _object(_json(push.body, "body"), "body")
    kind = GENERIC_TYPES.get(_text(message, "type", "body", required=True))
    if kind is None:
        return Reading(skipped=[str(message.get("type"))])
    occurred = _text(message, "occurred_at", "body", required=True)
    try:
        occurred_at = dt.datetime.fromisoformat(occurred)
    except ValueError:
        raise PayloadError("body.occurred_at", "must be an ISO 8601 time with its offset") from None
    if timezone.is_naive(occurred_at):
        raise PayloadError("body.occurred_at", "must say its offset (…+08:00 or …Z)")
    member = _object(message.get("member"), "member")
    values = _record(
        store_member_id=_text(member, "member_id", "member", required=True),
        phone=_phone(_text(member, "phone", "member")),
        email=_text(member, "email", "member"),
        wechat_unionid=_text(member, "unionid", "member"),
        platform_user_id=_text(member, "platform_user_id", "member"),
        name=_text(member, "name", "member"),
        tier=_text(member, "tier", "member"),
        points=_points(member, "points", "member"),
    )
    return Reading(events=[MembershipEvent(push.headers["webhook-id"], kind, occurred_at, values)])


ADAPTERS: dict[str, Callable[[PlatformConnection, Push], Reading]] = {
    PlatformConnection.Adapter.TMALL: read_tmall,
    PlatformConnection.Adapter.DOUYIN: read_douyin,
    PlatformConnection.Adapter.WECHAT: read_wechat,
    PlatformConnection.Adapter.GENERIC: read_generic,
}


def read(connection: PlatformConnection, push: Push) -> Reading:
    return ADAPTERS[connection.adapter](connection, push)

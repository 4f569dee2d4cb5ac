"""Normalising contact points and ids, and the store record that resolution consumes.

Every value is normalised once, here, before it is compared or stored, so ``138 0013
8000``, ``+86-138-0013-8000`` and ``8613800138000`` are one identity. Contact points and
ids are NFKC-normalised first: a Chinese input method types full-width digits and
letters (``１３８００１３８０００``, ``ｚｓ＠ｅｘａｍｐｌｅ．ｃｏｍ``, ``Ｔ１００``), which are the
same number, address or id to the person and must be the same identity here.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import pgettext_lazy

from .models import IdentityKind, Member, Store

UNIONID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
MAX_ID_LENGTH = 100
MAX_EMAIL_LENGTH = 254  # Member.email


ERASED_PREFIX = "erased:"


def erased_value(kind: str, value: str) -> str:
    """The keyed hash that replaces a contact point or id when its person is erased
    (DESIGN.md ⚑ deletion): a re-import of the same phone finds it and is refused,
    while nobody can read the number back. HMAC-SHA256 under ``ERASURE_HASH_KEY``."""
    return _eraser(settings.ERASURE_HASH_KEY.encode())(kind, value)


def erased_keys(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """The identity keys an erased person's ``keys`` were stored under, each to the key it
    hides: resolution looks both up in one query to refuse an erased person's row. The
    key is prepared once (an import hashes every identity of its file)."""
    erased = _eraser(settings.ERASURE_HASH_KEY.encode())
    return {(kind, erased(kind, value)): (kind, value) for kind, value in keys}


_BLOCK = 64  # SHA-256's block size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=4)
def _eraser(secret: bytes) -> Callable[[str, str], str]:
    """``ERASED_PREFIX`` + HMAC-SHA256(secret, kind NUL value) as hex (RFC 2104), with
    the padded key hashed once into an inner and an outer state that each value copies:
    ``hmac.digest`` pads and hashes the key again for every value, which made these
    hashes a large part of an import's Python time (bench/README.md, "Figures that were
    in code comments"). tests/members/test_erasure_hash.py checks it against
    ``hmac.digest``."""
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_BLOCK, b"\0")
    inner, outer = hashlib.sha256(secret.translate(_INNER_PAD)), hashlib.sha256(secret.translate(_OUTER_PAD))

    def erased(kind: str, value: str) -> str:
        digest = inner.copy()
        digest.update(f"{kind}\x00{value}".encode())
        final = outer.copy()
        final.update(digest.digest())
        return ERASED_PREFIX + final.hexdigest()

    return erased


def nfkc(text: str) -> str:
    """Unicode compatibility form (full-width → ASCII); ASCII text (nearly every value of
    a million-row import) returns as it is without the normaliser's cost."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


class RecordError(ValueError):
    """A value in a store record that cannot be used; ``field`` names the column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ErasedPerson(RecordError):
    """The record names a person who had their data erased: not imported, never contacted."""


def _region(code: str, name: Any) -> tuple[str, Any]:
    return code, format_lazy("{} +{}", name, phonenumbers.country_code_for_region(code))


# The countries and regions whose phone numbers people type in the privacy center's sign-in
# and on the paper-consent page, with their calling codes. A number typed without its
# country code is read as a number of the region chosen next to it.
PHONE_REGIONS = [
    _region("CN", pgettext_lazy("phone country", "China")),
    _region("RU", pgettext_lazy("phone country", "Russia")),
    _region("HK", pgettext_lazy("phone country", "Hong Kong")),
    _region("MO", pgettext_lazy("phone country", "Macau")),
    _region("TW", pgettext_lazy("phone country", "Taiwan")),
]


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """Return the E.164 form of a phone number or raise ``RecordError``.

    Numbers without a country code are read as numbers of ``PHONE_DEFAULT_REGION`` (CN);
    foreign numbers written with their code (+7 …) stay valid.
    """
    text = nfkc(str(raw)).strip()
    if not text:
        raise RecordError("phone", "is empty")
    region = region or settings.PHONE_DEFAULT_REGION
    if region == "CN" and (mobile := _cn_mobile(text)):
        return mobile
    return parse_phone(text, region)


def parse_phone(text: str, region: str) -> str:
    """``normalize_phone`` through phonenumbers alone (the slow, general way)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise RecordError("phone", f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise RecordError("phone", f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# A mainland mobile number (what nearly every member carries) is valid exactly when its
# 11 digits match the mobile pattern of phonenumbers' own CN metadata, and its E.164 form
# is then "+86" and the digits, found far faster than through phonenumbers, which is what
# a million-row import spent most on (bench/README.md, "Figures that were in code
# comments"). tests/imports/test_import_rows.py compares both.
# ASCII digits only: ``\d`` also matches other scripts' digits (Arabic-Indic, Devanagari),
# which NFKC leaves as they are; phonenumbers reads those.
_CN_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1\d{10})$", re.ASCII)
_PHONE_SEPARATORS = re.compile(r"[\s\-().（）]")


@functools.cache
def _cn_mobile_pattern() -> re.Pattern[str]:
    return re.compile(phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


def _cn_mobile(text: str) -> str | None:
    match = _CN_MOBILE.match(_PHONE_SEPARATORS.sub("", text))
    if match and _cn_mobile_pattern().fullmatch(match.group(1)):
        return "+86" + match.group(1)
    return None


class _EmailValidator(EmailValidator):
    """Django's e-mail validator with its user pattern compiled once (Django's is a lazy
    object, a few µs a call) and each domain checked once: a million-row member file has
    a few hundred distinct domains. Same answers (tests/imports/test_import_rows.py)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)

    def validate_domain_part(self, domain_part: str) -> bool:
        return _valid_domain(domain_part)


@functools.lru_cache(maxsize=65536)
def _valid_domain(domain_part: str) -> bool:
    return validate_email.validate_domain_part(domain_part)


_validate_email = _EmailValidator()


def normalize_email(raw: str) -> str:
    text = nfkc(str(raw)).strip().lower()
    if not text:
        raise RecordError("email", "is empty")
    if len(text) > MAX_EMAIL_LENGTH:  # NFKC may lengthen it (㎖ → ml) past Member.email's column
        raise RecordError("email", f"is longer than {MAX_EMAIL_LENGTH} characters")
    try:
        _validate_email(text)
    except ValidationError:
        raise RecordError("email", f"{text!r} is not a valid e-mail address") from None
    return text


def normalize_unionid(raw: str) -> str:
    text = nfkc(str(raw)).strip()
    if not UNIONID_RE.match(text):
        raise RecordError("wechat_unionid", f"{text!r} is not a WeChat unionid")
    return text


def normalize_id(raw: Any, field_name: str) -> str:
    text = nfkc(str(raw)).strip()
    if not text:
        raise RecordError(field_name, "is required")
    if len(text) > MAX_ID_LENGTH:
        raise RecordError(field_name, f"is longer than {MAX_ID_LENGTH} characters")
    return text


def store_member_value(store_id: int, store_member_id: str) -> str:
    return f"{store_id}:{store_member_id}"


def platform_user_value(platform: str, user_id: str) -> str:
    return f"{platform}:{user_id}"


# Which rule explains a merge when several identities link the same two members: the
# strongest evidence first.
RULE_PRIORITY = (
    IdentityKind.STORE_MEMBER,
    IdentityKind.WECHAT_UNIONID,
    IdentityKind.PLATFORM_USER,
    IdentityKind.PHONE,
    IdentityKind.EMAIL,
)

# The kinds as plain strings (an enum member's .value is a descriptor call, and records
# are made a million at a time by imports).
_STORE_MEMBER = IdentityKind.STORE_MEMBER.value
_PHONE = IdentityKind.PHONE.value
_EMAIL = IdentityKind.EMAIL.value
_WECHAT_UNIONID = IdentityKind.WECHAT_UNIONID.value
_PLATFORM_USER = IdentityKind.PLATFORM_USER.value

_PROFILE_LIMITS = {"name": 100, "province": 64, "city": 64, "locale": 10, "tier": 50}
# StoreMembership.points is a PostgreSQL integer: a value outside refused the whole COPY
# of an import chunk (and, on the row-by-row path, its transaction) instead of one row.
POINTS_MIN, POINTS_MAX = -(2**31), 2**31 - 1
# Earlier than this, a join time is a typing error; far earlier ones (year 1) also cannot be
# read back once converted to UTC.
EARLIEST_JOIN_YEAR = 1900


@dataclass
class StoreRecord:
    """One person as one store knows them. Build it with ``StoreRecord.clean`` so every
    value is validated and normalised."""

    store: Store
    store_member_id: str
    phone: str = ""
    email: str = ""
    wechat_unionid: str = ""
    platform_user_id: str = ""
    name: str = ""
    gender: str = ""
    birth_date: dt.date | None = None
    province: str = ""
    city: str = ""
    locale: str = ""
    joined_at: dt.datetime | None = None
    tier: str = ""
    points: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # When the source last saw these values: decides survivorship against other sources.
    observed_at: dt.datetime = field(default_factory=timezone.now)

    @classmethod
    def clean(
        cls, *, store: Store, now: dt.datetime | None = None, today: dt.date | None = None, **values: Any
    ) -> StoreRecord:
        """Validate and normalise raw values; raise ``RecordError`` naming the field.
        ``now`` and ``today`` (the local date) are the moment future dates are judged
        against; a caller cleaning many records passes them once (each costs µs)."""
        data: dict[str, Any] = {"store": store}
        data["store_member_id"] = normalize_id(values.get("store_member_id", ""), "member_id")
        if values.get("phone"):
            data["phone"] = normalize_phone(values["phone"])
        if values.get("email"):
            data["email"] = normalize_email(values["email"])
        if values.get("wechat_unionid"):
            data["wechat_unionid"] = normalize_unionid(values["wechat_unionid"])
        if values.get("platform_user_id"):
            data["platform_user_id"] = normalize_id(values["platform_user_id"], "platform_user_id")
        for name, limit in _PROFILE_LIMITS.items():
            raw = values.get(name)
            if raw in (None, ""):
                continue
            text = str(raw).strip()
            if len(text) > limit:
                raise RecordError(name, f"is longer than {limit} characters")
            data[name] = text
        gender = values.get("gender")
        if gender not in (None, ""):
            data["gender"] = normalize_gender(gender)
        birth_date = values.get("birth_date")
        if birth_date is not None:
            if not isinstance(birth_date, dt.date) or isinstance(birth_date, dt.datetime):
                raise RecordError("birthday", "must be a date")
            if birth_date > (today or timezone.localdate(now)) or birth_date.year < 1900:
                raise RecordError("birthday", f"{birth_date.isoformat()} is not a possible birth date")
            data["birth_date"] = birth_date
        joined_at = values.get("joined_at")
        if joined_at is not None:
            if timezone.is_naive(joined_at):
                joined_at = timezone.make_aware(joined_at)
            if joined_at > (now or timezone.now()) + dt.timedelta(minutes=5):
                raise RecordError("joined_at", "is in the future")
            if joined_at.year < EARLIEST_JOIN_YEAR:
                raise RecordError("joined_at", f"is before {EARLIEST_JOIN_YEAR}")
            data["joined_at"] = joined_at
        if values.get("points") not in (None, ""):
            try:
                points = int(values["points"])
            except (TypeError, ValueError):
                raise RecordError("points", f"{str(values['points'])[:50]!r} is not a whole number") from None
            if not POINTS_MIN <= points <= POINTS_MAX:
                raise RecordError("points", f"{points} is outside {POINTS_MIN} to {POINTS_MAX}")
            data["points"] = points
        if values.get("attributes"):
            attributes = dict(values["attributes"])
            for key, value in attributes.items():
                if "\x00" in str(key) or (isinstance(value, str) and "\x00" in value):
                    # PostgreSQL's jsonb holds no NUL (the API refuses it in any body).
                    raise RecordError("attributes", f"{str(key).replace(chr(0), '')!r} contains NUL (\\u0000)")
            data["attributes"] = attributes
        if values.get("observed_at") is not None:
            data["observed_at"] = values["observed_at"]
        return cls(**data)

    def identity_keys(self) -> list[tuple[str, str]]:
        keys = [(_STORE_MEMBER, store_member_value(self.store.pk, self.store_member_id))]
        if self.phone:
            keys.append((_PHONE, self.phone))
        if self.email:
            keys.append((_EMAIL, self.email))
        if self.wechat_unionid:
            keys.append((_WECHAT_UNIONID, self.wechat_unionid))
        if self.platform_user_id:
            keys.append((_PLATFORM_USER, platform_user_value(self.store.platform, self.platform_user_id)))
        return keys

    def profile(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in Member.PROFILE_FIELDS}


def normalize_gender(raw: Any) -> str:
    text = str(raw).strip().upper()
    mapping = {"M": "M", "MALE": "M", "男": "M", "F": "F", "FEMALE": "F", "女": "F"}
    if text not in mapping:
        raise RecordError("gender", f"{raw!r} is not one of M, F, 男, 女")
    return mapping[text]

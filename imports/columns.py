"""The member file's columns (DESIGN.md "Member file columns" ⚑): header names in English
or Chinese, and the text forms of values (dates, consent answers) stores send us."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext_noop

from .pii_columns import promote_contact_columns
from .reasons import Reason, reason

# Canonical column → accepted header spellings (compared case-insensitively).
ALIASES: dict[str, tuple[str, ...]] = {
    "member_id": ("member_id", "会员id", "会员编号", "会员卡号"),
    "phone": ("phone", "手机号", "手机", "mobile"),
    "email": ("email", "邮箱", "电子邮箱"),
    "name": ("name", "姓名"),
    "gender": ("gender", "性别"),
    "birthday": ("birthday", "生日", "出生日期"),
    "province": ("province", "省份"),
    "city": ("city", "城市"),
    "joined_at": ("joined_at", "入会时间", "注册时间"),
    "tier": ("tier", "会员等级"),
    "points": ("points", "积分"),
    "wechat_unionid": ("wechat_unionid", "unionid"),
    "consent_at": ("consent_at", "授权时间"),
    # The proof of a double opt-in the store ran itself, for the row's e-mail grants
    # (consent.validation.CONFIRMATION_FIELDS): without it they are requests we confirm.
    "email_confirmed_at": ("email_confirmed_at", "邮箱确认时间"),
    "email_confirmed_ip": ("email_confirmed_ip", "邮箱确认ip"),
    "email_confirmation_id": ("email_confirmation_id", "确认邮件id"),
}
# Proof column → its field in consent.validation.CONFIRMATION_FIELDS.
CONFIRMATION_COLUMNS = {"email_confirmed_at": "confirmed_at", "email_confirmed_ip": "ip",
                        "email_confirmation_id": "message_id"}  # fmt: skip
# Chinese consent headers → (purpose, channel).
CONSENT_ALIASES: dict[str, tuple[str, str]] = {
    "短信营销授权": ("marketing", "sms"),
    "邮件营销授权": ("marketing", "email"),
    "个性化推荐授权": ("personalization", ""),
}
CHANNELS = ("email", "sms", "phone", "push", "wechat", "im", "post")

_LOOKUP = {alias: canonical for canonical, aliases in ALIASES.items() for alias in aliases}

# Order of columns in files we write (exports), so they re-import unchanged.
EXPORT_COLUMNS = (
    "member_id",
    "phone",
    "email",
    "name",
    "gender",
    "birthday",
    "province",
    "city",
    "joined_at",
    "tier",
    "points",
    "wechat_unionid",
)


@dataclass
class Header:
    """Where each known column sits in a file's header row."""

    columns: dict[str, int] = field(default_factory=dict)  # canonical name → index
    consent: list[tuple[int, str, str, str]] = field(default_factory=list)  # index, header, purpose, channel
    extra: list[tuple[int, str]] = field(default_factory=list)  # unknown columns: index, header
    names: list[str] = field(default_factory=list)  # the header cells as written
    duplicates: list[str] = field(default_factory=list)


def normalise_header(cell: str) -> str:
    return re.sub(r"\s+", "_", str(cell).replace("\ufeff", "").strip()).lower()


def consent_column(key: str) -> tuple[str, str] | None:
    """``consent_marketing_sms`` → ("marketing", "sms"); ``consent_analytics`` → ("analytics", "")."""
    if key in CONSENT_ALIASES:
        return CONSENT_ALIASES[key]
    if not key.startswith("consent_") or key == "consent_at":
        return None
    rest = key[len("consent_") :]
    if not rest:
        return None
    purpose, _, channel = rest.rpartition("_")
    if purpose and channel in CHANNELS:
        return purpose, channel
    return rest, ""


def map_header(cells: list[str]) -> Header:
    header = Header(names=[str(c or "").replace("\ufeff", "").strip() for c in cells])
    seen: set[str] = set()
    for index, name in enumerate(header.names):
        key = normalise_header(name)
        if not key:
            continue
        canonical = _LOOKUP.get(key)
        consent = None if canonical else consent_column(key)
        ident = canonical or (f"consent:{consent[0]}:{consent[1]}" if consent else None)
        if ident and ident in seen:
            header.duplicates.append(name)
            continue
        if ident:
            seen.add(ident)
        if canonical:
            header.columns[canonical] = index
        elif consent:
            header.consent.append((index, name, consent[0], consent[1]))
        else:
            header.extra.append((index, name))
    promote_contact_columns(header, normalise_header)  # 手机号码, 联系电话, E-mail地址 … (imports.pii_columns)
    return header


# --- Values ------------------------------------------------------------------------------

CONSENT_VALUES = {
    "1": True,
    "y": True,
    "yes": True,
    "true": True,
    "是": True,
    "0": False,
    "n": False,
    "no": False,
    "false": False,
    "否": False,
}


class ValueProblem(ValueError):
    """A value that cannot be read; ``reason`` is translatable (``reasons.Reason``)."""

    def __init__(self, why: Reason) -> None:
        super().__init__(why)
        self.reason = why


def parse_consent(text: str) -> bool | None:
    """True (granted), False (withdrawn) or None (blank: no event)."""
    value = text.strip().lower()
    if not value:
        return None
    if value in CONSENT_VALUES:
        return CONSENT_VALUES[value]
    raise ValueProblem(
        reason(
            gettext_noop("%(value)s is not a consent answer (1/0, Y/N, true/false, 是/否, or blank)"), value=repr(text)
        )
    )


_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_CN_DATE_RE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$")
_DATETIME_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")


@functools.lru_cache(maxsize=65536)  # birthdays repeat: a million rows hold ~30,000 distinct ones
def parse_date(text: str) -> dt.date:
    value = text.strip()
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return dt.date.fromisoformat(value)  # the common case, in C
        except ValueError:
            pass
    match = _DATE_RE.match(value) or _CN_DATE_RE.match(value)
    if not match:
        # Date cells from spreadsheets arrive as "YYYY-MM-DD 00:00:00".
        if (full := _DATETIME_RE.match(value)) and not any(int(x or 0) for x in full.groups()[3:6]):
            match = full
        else:
            raise ValueProblem(
                reason(
                    gettext_noop("%(value)s is not a date (YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日)"), value=repr(text)
                )
            )
    year, month, day = (int(x) for x in match.groups()[:3])
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueProblem(reason(gettext_noop("%(value)s is not a possible date"), value=repr(text))) from None


def parse_datetime(text: str, *, tz: dt.tzinfo | None = None) -> dt.datetime:
    """A time as stores write it; without an offset it is in ``tz``, by default the
    current time zone (TIME_ZONE, Asia/Shanghai)."""
    value = text.strip()
    if len(value) == 19 and value[4] == "-" and value[10] == " ":
        try:  # "YYYY-MM-DD HH:MM:SS", what most back offices write, parsed in C
            return dt.datetime.fromisoformat(value).replace(tzinfo=tz or timezone.get_current_timezone())
        except ValueError:
            pass
    match = _DATETIME_RE.match(value)
    if match:
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            parsed = dt.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                int((fraction or "0").ljust(6, "0")),
            )
        except ValueError:
            raise ValueProblem(reason(gettext_noop("%(value)s is not a possible time"), value=repr(text))) from None
    elif _DATE_RE.match(value) or _CN_DATE_RE.match(value):
        day_ = parse_date(value)
        parsed = dt.datetime(day_.year, day_.month, day_.day)
    else:
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueProblem(
                reason(gettext_noop("%(value)s is not a date and time (YYYY-MM-DD HH:MM:SS)"), value=repr(text))
            ) from None
    if parsed.tzinfo is None:
        # zoneinfo zones: attaching is make_aware (no DST gaps in Asia/Shanghai to fold).
        parsed = parsed.replace(tzinfo=tz or timezone.get_current_timezone())
    return parsed

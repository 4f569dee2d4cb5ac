"""When a file's consent answers were given, when the file does not say.

A WeChat member export has consent columns but no time column: the person importing it
states when the answers were collected (``import_members --consent-at``, the admin's
"consent answers collected at" field). That time is the occurred_at of the events of rows
without a consent_at of their own, and is kept in their evidence. It is checked before
anything is written: not in the future, not before the notice the import records as
shown took effect; and a file with answers and no time at all is refused, saying what to
add.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext

from consent.models import Notice, Purpose
from consent.services import current_notice
from consent.validation import latest_allowed
from members.models import Store

from .columns import Header
from .readers import FileProblem

OPTION = "--consent-at"


class ConsentTimeProblem(FileProblem):
    """The stated consent time is missing or wrong: nothing is imported. The message
    names what to change (the command's option and the admin's field)."""

    field = "consent_at"


def field_label() -> str:
    """The admin import page's field, as its label reads (one text for both)."""
    return gettext("Consent answers collected at")


def parse_consent_at(text: str, *, tz: dt.tzinfo | None = None) -> dt.datetime:
    """ISO 8601 (``2026-03-01``, ``2026-03-01 10:00``, ``2026-03-01T10:00:00+08:00``); a
    time without an offset is in the site's time zone (``TIME_ZONE``, Asia/Shanghai)."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConsentTimeProblem(
            gettext("%(value)r is not a date and time in ISO 8601 (for example 2026-03-01 10:00 or "
                    "2026-03-01T10:00:00+08:00)") % {"value": text}
        ) from None  # fmt: skip
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, tz or timezone.get_default_timezone())
    return parsed


def _shown(moment: dt.datetime) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i:s") + f" ({timezone.get_current_timezone_name()})"


def check_consent_time(*, store: Store, header: Header, consent_at: dt.datetime | None, now: dt.datetime) -> None:
    """Raise ``ConsentTimeProblem`` unless the file's consent answers have a time."""
    if consent_at is None:
        if header.consent and "consent_at" not in header.columns and "joined_at" not in header.columns:
            raise ConsentTimeProblem(
                gettext(
                    "This file has consent answers (%(columns)s) but no time column (consent_at / 授权时间, or "
                    "joined_at / 入会时间): state when the answers were collected with %(option)s DATETIME "
                    "(import_members) or the “%(field)s” field (admin import page)."
                )
                % {"columns": ", ".join(name for _i, name, _p, _c in header.consent[:5]), "option": OPTION,
                   "field": field_label()}
            )  # fmt: skip
        return
    if consent_at > latest_allowed(now):
        raise ConsentTimeProblem(
            gettext("The consent time %(time)s is in the future (%(option)s / “%(field)s”).")
            % {"time": _shown(consent_at), "option": OPTION, "field": field_label()}
        )
    notice = _latest_notice(store, header)
    if notice is not None and consent_at < notice.published_at:
        raise ConsentTimeProblem(
            gettext(
                "The consent time %(time)s is before the notice the import records as shown took effect: "
                "“%(notice)s” version %(version)s, published %(published)s. Check %(option)s / “%(field)s”."
            )
            % {"time": _shown(consent_at), "notice": notice.title, "version": notice.version,
               "published": _shown(notice.published_at), "option": OPTION, "field": field_label()}
        )  # fmt: skip


def _latest_notice(store: Store, header: Header) -> Notice | None:
    """Of the notices the import may record as shown for the file's consent columns
    (``consent.services.current_notice``, picked by the member's language), the one that
    took effect last: a stated time before it would be before the text it points at."""
    codes = {code for _index, _name, code, _channel in header.consent}
    if not codes:
        return None
    brand = store.brand
    purposes = list(Purpose.objects.filter(brand_id=store.brand_id, code__in=codes, is_active=True))
    latest = None
    for purpose in purposes:
        languages = set(
            Notice.objects.filter(brand_id=store.brand_id)
            .filter(Q(purpose=purpose) | Q(purpose__isnull=True))
            .values_list("locale", flat=True)
        )
        for language in {"", *languages}:
            notice = current_notice(brand, purpose, language)
            if notice is not None and (latest is None or notice.published_at > latest.published_at):
                latest = notice
    return latest

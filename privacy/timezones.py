"""The person's time zone in the privacy center: pages and their data copy show times in
it, and say which it is.

The browser tells its zone (``privacy.js`` sets the ``tz`` cookie from ``Intl``); the
person can pick another in the footer (a plain form, for pages without JavaScript). Until
then times are in the site's zone (``TIME_ZONE``), and every page says so. Only pages
under /privacy/ take the person's zone: the admin keeps the brand's.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from functools import cache

from babel.dates import get_timezone_location
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import get_language, to_locale

COOKIE = "tz"
COOKIE_MAX_AGE = 365 * 24 * 3600
PREFIX = "/privacy/"

# Offered in the footer: the zones of the regions the platform serves, then a few others.
# A zone the browser reports that is not here is kept and shown as well.
OFFERED = [
    "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei",
    "Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
    "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
    "Asia/Magadan", "Asia/Kamchatka",
    "Asia/Singapore", "Asia/Tokyo", "Asia/Seoul", "Europe/London", "Europe/Paris", "Europe/Berlin",
    "America/New_York", "America/Los_Angeles", "Australia/Sydney", "UTC",
]  # fmt: skip


@cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid(name: str | None) -> str | None:
    """``name`` when it is an IANA zone this machine knows, else None."""
    return name if name and name in _known() else None


def offset_label(name: str, when: dt.datetime | None = None) -> str:
    """``UTC+08:00`` for ``name`` at ``when`` (now by default)."""
    offset = (when or timezone.now()).astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def place(name: str) -> str:
    """The zone's city in the page's language (CLDR's names, through Babel): 上海, Москва."""
    try:
        return get_timezone_location(name, locale=to_locale(get_language() or settings.LANGUAGE_CODE), return_city=True)
    except (LookupError, ValueError):  # a zone or language CLDR does not name
        return name.rsplit("/", 1)[-1].replace("_", " ")


def choices(current: str) -> list[tuple[str, str]]:
    names = OFFERED if current in OFFERED else [current, *OFFERED]
    return [(name, f"{place(name)} ({offset_label(name)})") for name in names]


def current_name() -> str:
    return timezone.get_current_timezone_name()


class PersonTimeZoneMiddleware:
    """Privacy-center pages in the zone of the ``tz`` cookie; every other page as before."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = valid(request.COOKIES.get(COOKIE)) if request.path.startswith(PREFIX) else None
        if name is None:
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def remember(response: HttpResponse, name: str) -> None:
    response.set_cookie(
        COOKIE, name, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax", secure=settings.SESSION_COOKIE_SECURE
    )

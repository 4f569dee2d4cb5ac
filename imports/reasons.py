"""Why a row is rejected, in words a person can act on, in their own language.

A reason is kept as its English message id and parameters (``Reason``), and translated
only where a person reads it: the admin's pages and rejected-rows CSV in the staff
user's language, the command's output in the active language. A job's rejected rows are
stored that way (``report.STORED_HEADER``), since the worker that finds them does not
know who will read them.

The member and consent rules raise English messages of their own (``RecordError``,
``consent.validation.Problem``); ``as_reason`` turns the known ones into message ids
with parameters, so they are translated too. An unknown message passes through as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.translation import gettext, gettext_noop, ngettext


class Reason(str):
    """The English text of a reason (so it compares and prints as before), with the
    message id and parameters it was made from; ``localized()`` is what a person reads."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any] | None = None) -> Reason:
        params = params or {}
        text = msgid % params if params else msgid
        self = super().__new__(cls, text)
        self.msgid = msgid
        self.params = params
        return self

    def localized(self) -> str:
        """The reason in the active language."""
        translated = gettext(self.msgid)
        return translated % self.params if self.params else translated

    def stored(self) -> tuple[str, str]:
        """(message id, parameters as JSON) for a stored error file."""
        return self.msgid, json.dumps(self.params, ensure_ascii=False) if self.params else ""

    @classmethod
    def from_stored(cls, msgid: str, params: str) -> Reason:
        return cls(msgid, json.loads(params) if params else None)


def reason(msgid: str, **params: Any) -> Reason:
    return Reason(msgid, params)


def localized(text: str) -> str:
    return text.localized() if isinstance(text, Reason) else gettext(text) if text else text


# Messages of members.identities and consent.validation that reach a row, as message
# ids: the pattern's named groups are the parameters, so the English text is unchanged.
_KNOWN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.DOTALL), msgid)
    for pattern, msgid in (
        (r"is required", gettext_noop("is required")),
        (r"is empty", gettext_noop("is empty")),
        (r"must be a date", gettext_noop("must be a date")),
        (r"is in the future", gettext_noop("is in the future")),
        (r"needs a time zone", gettext_noop("needs a time zone")),
        (r"is longer than (?P<limit>\d+) characters", gettext_noop("is longer than %(limit)s characters")),
        (r"is before (?P<year>\d+)", gettext_noop("is before %(year)s")),
        (r"(?P<value>.+) is not a valid phone number", gettext_noop("%(value)s is not a valid phone number")),
        (r"(?P<value>.+) is not a phone number", gettext_noop("%(value)s is not a phone number")),
        (r"(?P<value>.+) is not a valid e-mail address", gettext_noop("%(value)s is not a valid e-mail address")),
        (r"(?P<value>.+) is not a WeChat unionid", gettext_noop("%(value)s is not a WeChat unionid")),
        (r"(?P<value>.+) is not a possible birth date", gettext_noop("%(value)s is not a possible birth date")),
        (r"(?P<value>.+) is not a whole number", gettext_noop("%(value)s is not a whole number")),
        (r"(?P<value>-?\d+) is outside (?P<low>-?\d+) to (?P<high>-?\d+)", gettext_noop("%(value)s is outside %(low)s to %(high)s")),
        (r"(?P<value>.+) is not one of M, F, 男, 女", gettext_noop("%(value)s is not one of M, F, 男, 女")),
        (r"(?P<value>.+) contains NUL \(\\u0000\)", gettext_noop("%(value)s contains NUL (\\u0000)")),
        (r"(?P<value>.+) is in the future", gettext_noop("%(value)s is in the future")),
        (r"(?P<value>.+) is not a plausible time", gettext_noop("%(value)s is not a plausible time")),
        (r"brand (?P<brand>.+) has no active purpose (?P<purpose>.+)", gettext_noop("brand %(brand)s has no active purpose %(purpose)s")),
        (r"brand (?P<brand>.+) has no purpose (?P<purpose>.+)", gettext_noop("brand %(brand)s has no purpose %(purpose)s")),
        (r"brand (?P<brand>.+) has published no notice for (?P<purpose>.+)", gettext_noop("brand %(brand)s has published no notice for %(purpose)s")),
        (
            r"belongs to a person whose data was erased at their request; not imported",
            gettext_noop("belongs to a person whose data was erased at their request; not imported"),
        ),
    )
]  # fmt: skip


def as_reason(text: str) -> Reason:
    """A message of the member or consent rules as a translatable reason."""
    if isinstance(text, Reason):
        return text
    for pattern, msgid in _KNOWN:
        if match := pattern.fullmatch(text):
            return Reason(msgid, match.groupdict())
    return Reason(text)


# --- Durations ------------------------------------------------------------------------


def duration_in_words(seconds: float) -> str:
    """``125.3`` → "2 minutes 5 seconds", in the active language; under a second, "less
    than a second"."""
    total = int(round(seconds))
    if total < 1:
        return gettext("less than a second")
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours})
    if minutes:
        parts.append(ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes})
    if secs:
        parts.append(ngettext("%(count)d second", "%(count)d seconds", secs) % {"count": secs})
    return " ".join(parts)

"""The ledger keeps no clear contact point of the person (DESIGN.md ⚑ erasure): it is
kept for good, also after the person is erased, so what a source put in an event's
evidence about the person themselves is stored as keyed hashes before the event is
written, and their name as a placeholder.

Evidence is free-form (a store sends the checkbox text, the page, a form id, its own
notes): a note such as "客户 13800138000 在门店签字" would otherwise outlive an erasure.
Only the person's own phone (E.164 or the 11 national digits), e-mail (any case) and name
are replaced, wherever they appear in a text value; everything else, including message
ids that look like addresses, stays as sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings

from members.identities import erased_value
from members.models import Member

NAME_PLACEHOLDER = "[name]"
_MIN_NAME = 2  # a one-character name would replace that character everywhere


@lru_cache(maxsize=4096)
def _pattern(regex: str, flags: int) -> re.Pattern[str]:
    """A compiled needle. ``re``'s own cache holds 512 patterns and is shared with the
    whole process: one writer sees thousands of people, so it kept compiling."""
    return re.compile(regex, flags)


class _Needle:
    """One text of the person's to replace. ``literal`` must occur in a value for the
    pattern to match there (exactly, or ignoring ASCII case when ``fold``), so most
    values are passed over with a substring test in C instead of a regular expression;
    the pattern and the keyed hash (an HMAC) are made only when something may match."""

    __slots__ = ("_replacement", "flags", "fold", "literal", "regex", "replacement")

    def __init__(self, literal: str, regex: str, replacement: Callable[[], str], *, fold: bool = False) -> None:
        self.literal = literal
        self.regex = regex
        self.fold = fold
        self.flags = re.IGNORECASE if fold else 0
        self._replacement = replacement
        self.replacement: str | None = None

    def apply(self, value: str) -> str:
        if self.fold:
            # Under IGNORECASE a few non-ASCII letters match ASCII ones ("K" KELVIN SIGN
            # matches "k", "ſ" matches "s"): only an all-ASCII value and needle may be
            # passed over by comparing lower-cased text.
            if value.isascii() and self.literal.isascii() and self.literal.lower() not in value.lower():
                return value
        elif self.literal not in value:
            return value
        if self.replacement is None:
            self.replacement = self._replacement()
        return _pattern(self.regex, self.flags).sub(self.replacement, value)


def _needles(member: Member) -> tuple[_Needle, ...]:
    return _needles_of(member.phone or "", member.email or "", member.name.strip(), settings.ERASURE_HASH_KEY)


@lru_cache(maxsize=4096)
def _needles_of(phone: str, email: str, name: str, _key: str) -> tuple[_Needle, ...]:
    """In the order they are replaced (a later needle sees the earlier replacements).
    Kept per person and erasure key: a writer sees the same people again and again, and
    each needle keeps its keyed hash once made."""
    needles: list[_Needle] = []
    if phone:
        national = phone.removeprefix("+86") if phone.startswith("+86") else ""
        for form in filter(None, (phone, national)):
            # Not inside a longer run of digits (an order number that contains them).
            needles.append(_Needle(form, rf"(?<!\d){re.escape(form)}(?!\d)", lambda: erased_value("phone", phone)))
    if email:
        needles.append(_Needle(email, re.escape(email), lambda: erased_value("email", email), fold=True))
    if len(name) >= _MIN_NAME:
        needles.append(_Needle(name, re.escape(name), lambda: NAME_PLACEHOLDER))
    return tuple(needles)


def scrub_evidence(evidence: Any, member: Member) -> Any:
    """``evidence`` with the person's contact points as keyed hashes and their name as a
    placeholder, in every text value and key at any depth; anything else unchanged."""
    if not evidence:
        return evidence
    needles = _needles(member)
    if not needles:
        return evidence

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for needle in needles:
                value = needle.apply(value)
            return value
        if isinstance(value, dict):
            return {scrub(key): scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    return scrub(evidence)

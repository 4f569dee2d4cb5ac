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
from typing import Any

from members.identities import erased_value
from members.models import Member

NAME_PLACEHOLDER = "[name]"
_MIN_NAME = 2  # a one-character name would replace that character everywhere


def _needles(member: Member) -> list[tuple[re.Pattern[str], str]]:
    needles: list[tuple[re.Pattern[str], str]] = []
    if member.phone:
        hashed = erased_value("phone", member.phone)
        national = member.phone.removeprefix("+86") if member.phone.startswith("+86") else ""
        for form in filter(None, (member.phone, national)):
            # Not inside a longer run of digits (an order number that contains them).
            needles.append((re.compile(rf"(?<!\d){re.escape(form)}(?!\d)"), hashed))
    if member.email:
        needles.append((re.compile(re.escape(member.email), re.IGNORECASE), erased_value("email", member.email)))
    if len(member.name.strip()) >= _MIN_NAME:
        needles.append((re.compile(re.escape(member.name.strip())), NAME_PLACEHOLDER))
    return needles


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
            for pattern, replacement in needles:
                value = pattern.sub(replacement, value)
            return value
        if isinstance(value, dict):
            return {scrub(key): scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    return scrub(evidence)

"""Scrubbing evidence passes over values that cannot contain the person's contact points
or name with a substring test before any regular expression (issue 27: the ledger's
write path). It must replace exactly what the plain regular expressions replace: this
compares it with them on values built to catch a wrong shortcut (case folding outside
ASCII, digits around a phone, a name inside a replacement)."""

from __future__ import annotations

import re

import pytest

from consent.evidence_scrub import NAME_PLACEHOLDER, scrub_evidence
from members.identities import erased_value
from members.models import Member


def _reference(evidence, member: Member):
    """The scrub as it was: every pattern on every text, in order."""
    needles = []
    if member.phone:
        national = member.phone.removeprefix("+86") if member.phone.startswith("+86") else ""
        for form in filter(None, (member.phone, national)):
            needles.append((re.compile(rf"(?<!\d){re.escape(form)}(?!\d)"), erased_value("phone", member.phone)))
    if member.email:
        needles.append((re.compile(re.escape(member.email), re.IGNORECASE), erased_value("email", member.email)))
    if len(member.name.strip()) >= 2:
        needles.append((re.compile(re.escape(member.name.strip())), NAME_PLACEHOLDER))

    def scrub(value):
        if isinstance(value, str):
            for pattern, replacement in needles:
                value = pattern.sub(replacement, value)
            return value
        if isinstance(value, dict):
            return {scrub(k): scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(evidence) if evidence and needles else evidence


PEOPLE = [
    Member(name="Alice", phone="+8613800138000", email="alice@example.com"),
    Member(name=" 王小明 ", phone="+8613912345678", email=""),
    Member(name="ab", phone="", email="kiss@example.com"),  # "ab" may occur inside a hex hash
    Member(name="X", phone="+14155550100", email="ſam@example.com"),
    Member(name="", phone="", email=""),
]

VALUES = [
    "Alice (13800138000, +8613800138000, ALICE@example.com) signed; order 9913800138000",
    "ALİCE@example.com and alıce@example.com",  # non-ASCII letters IGNORECASE folds onto ASCII
    "KISS@EXAMPLE.COM, ſam@example.com, SAM@example.com, \u212aiss@example.com",
    "王小明 13912345678 王小明",
    "+14155550100 4155550100 14155550100",
    "nothing of theirs here",
    "",
    "ab" * 40,
]


@pytest.mark.parametrize("member", PEOPLE, ids=lambda m: m.name.strip() or "nobody")
def test_scrub_replaces_what_the_plain_patterns_replace(member, settings):
    settings.ERASURE_HASH_KEY = "test-key"
    evidence = {
        "values": VALUES,
        "nested": {value: [value, 3, None, True] for value in VALUES},
        "plain": VALUES[0],
        "n": 1.5,
    }
    assert scrub_evidence(evidence, member) == _reference(evidence, member)


def test_empty_evidence_and_a_person_without_contact_points_stay_as_they_are():
    nobody = Member(name="", phone="", email="")
    evidence = {"note": "13800138000"}
    assert scrub_evidence(evidence, nobody) is evidence
    assert scrub_evidence({}, PEOPLE[0]) == {}
    assert scrub_evidence(None, PEOPLE[0]) is None

"""The ledger outlives an erasure, so an event's evidence never keeps the person's own
contact points or name in clear: a store's free-text note naming them is stored with
keyed hashes and a placeholder; everything else stays as sent (DESIGN.md ⚑ erasure)."""

from __future__ import annotations

import pytest

from consent.models import ConsentEvent
from consent.verification import verify_ledger
from members.identities import erased_value

pytestmark = pytest.mark.django_db

NOTE = "Alice (13800138000, +8613800138000, ALICE@example.com) signed at the counter; order 9913800138000"


def _post(api, external_id, evidence):
    return api.post("/api/v1/consent-events/", {
        "external_id": external_id, "purpose": "marketing", "channel": "sms", "action": "granted",
        "occurred_at": "2026-03-01T10:00:00+08:00", "phone": "13800138000", "evidence": evidence,
    }, format="json")  # fmt: skip


def test_the_persons_contact_points_and_name_are_not_kept_in_evidence(api, marketing, alice):
    evidence = {"note": NOTE, "form": {"Alice": "ok", "message_id": "<optin-1@tmall.example>"}, "ip": "198.51.100.7"}
    assert _post(api, "paper-1", evidence).status_code == 201

    stored = ConsentEvent.objects.get(external_id="paper-1").evidence
    phone, email = erased_value("phone", "+8613800138000"), erased_value("email", "alice@example.com")
    assert stored["note"] == (
        f"[name] ({phone}, {phone}, {email}) signed at the counter; order 9913800138000"  # digits inside stay
    )
    assert stored["form"] == {"[name]": "ok", "message_id": "<optin-1@tmall.example>"}
    assert stored["ip"] == "198.51.100.7"
    text = str(stored)
    assert "13800138000," not in text and "alice@example.com" not in text.lower() and "Alice" not in text
    assert verify_ledger().ok  # hashed as stored


def test_evidence_without_the_person_in_it_is_stored_as_sent(api, marketing, alice):
    evidence = {"checkbox": "我同意接收短信", "page": "https://lotus.example/join", "n": 3}
    assert _post(api, "web-1", evidence).status_code == 201
    assert ConsentEvent.objects.get(external_id="web-1").evidence == evidence

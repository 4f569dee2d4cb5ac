"""Consent over the API: the check, events one by one and in batches, preferences."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent import ledger
from consent.models import ConsentEvent, ConsentState, PreferenceChange
from consent.services import record_consent, state_differences
from consent.verification import verify_ledger
from members.models import Member
from tests.factories import make_members

pytestmark = pytest.mark.django_db

T0 = "2026-03-01T10:00:00+08:00"


def event(external_id, **fields):
    return {"external_id": external_id, "purpose": "marketing", "channel": "sms", "action": "granted",
            "occurred_at": T0, **fields}  # fmt: skip


def check(api, **params):
    return api.get("/api/v1/consent/check", {"purpose": "marketing", "channel": "sms", **params})


def test_check_default_deny_then_allowed_then_withdrawn(api, marketing, alice):
    assert check(api, phone="13800138000").json() == {"allowed": False, "reason": "no_consent", "as_of": None}
    assert api.post("/api/v1/consent-events/", event("e1", phone="138 0013 8000")).status_code == 201
    allowed = check(api, phone="13800138000").json()
    assert allowed["allowed"] is True and allowed["reason"] == "allowed"
    assert dt.datetime.fromisoformat(allowed["as_of"]) == dt.datetime.fromisoformat(T0)
    api.post("/api/v1/consent-events/", event("e2", member=alice.pk, action="withdrawn",
                                              occurred_at="2026-03-02T10:00:00+08:00"))  # fmt: skip
    assert check(api, member=alice.pk).json()["reason"] == "withdrawn"
    assert check(api, email="alice@example.com").json()["reason"] == "withdrawn"


def test_check_unknown_person_is_no_consent(api, marketing):
    assert check(api, phone="13912345678").json() == {"allowed": False, "reason": "no_consent", "as_of": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({}, ""),
        ({"phone": "13800138000", "member": "1"}, ""),
        ({"member": "x"}, "member"),
        ({"member": "99999999999999999999999"}, "member"),
        ({"phone": "13800138000", "purpose": "nope"}, "purpose"),
        ({"phone": "13800138000", "channel": "pigeon"}, "channel"),
        ({"phone": "13800138000", "channel": ""}, "channel"),
    ],
)
def test_check_bad_input_is_400(api, marketing, params, field):
    response = check(api, **params)
    assert response.status_code == 400, response.json()
    assert response.json()["errors"][0]["field"] == field


def test_check_is_can_contact_in_three_queries_after_the_key(api, api_key, marketing, alice):
    record_consent(member=alice, brand=alice.memberships.get().store.brand, purpose=marketing, channel="sms",
                   action="granted", source_type="store")  # fmt: skip
    check(api, phone="13912345678")  # warm: the key's last-used write and the purpose cache
    with CaptureQueriesContext(connection) as queries:
        response = check(api, phone="13800138000")
    assert response.json()["allowed"] is True
    sql = [q["sql"] for q in queries.captured_queries]
    assert "cdp_apikey" in sql[0]
    # can_contact: the person by phone (with reachability), the state, the suppression list.
    assert len(sql[1:]) <= 3, sql
    assert sum("consent_consentstate" in s for s in sql) == 1
    assert sum("consent_suppression" in s for s in sql) == 1


def test_check_answers_from_can_contact(api, marketing, alice, monkeypatch):
    from consent import api as consent_api
    from consent.queries import ContactDecision

    calls = []

    def fake(member, brand, purpose, channel, *, identity=None):
        calls.append((member, brand, purpose.code, channel, identity))
        return ContactDecision(False, "minor", None)

    monkeypatch.setattr(consent_api, "can_contact", fake)
    assert check(api, phone="138 0013 8000").json()["reason"] == "minor"
    assert calls == [(None, alice.memberships.get().store.brand_id, "marketing", "sms", ("phone", "+8613800138000"))]


def test_batch_is_idempotent_and_keeps_the_ledger_right(api, marketing, tmall):
    members = make_members(tmall, 30)
    batch = {"events": [event(f"b{i}", member=m.pk, channel="sms" if i % 2 else "email",
                              action="granted" if i % 2 else "requested") for i, m in enumerate(members)]}  # fmt: skip
    first = api.post("/api/v1/consent-events/", batch)
    assert first.status_code == 201, first.json()
    assert first.json()["created"] == 30
    before = ConsentEvent.objects.count()
    again = api.post("/api/v1/consent-events/", batch)
    assert again.status_code == 200
    assert again.json()["created"] == 0 and again.json()["existing"] == 30
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first.json()["results"]]
    assert ConsentEvent.objects.count() == before
    assert verify_ledger().ok
    assert state_differences() == []


def test_batch_is_all_or_nothing_and_names_the_item(api, marketing, alice, olga):
    batch = {"events": [event("ok", member=alice.pk), event("bad", member=olga.pk)]}
    response = api.post("/api/v1/consent-events/", batch)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "events/1/member", "message": "The brand has no member with this identifier."}
    ]
    assert not ConsentEvent.objects.exists()
    response = api.post("/api/v1/consent-events/", {"events": [event("x", member=alice.pk, channel="post")]})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "events/0/channel"
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = api.post("/api/v1/consent-events/", event("y", member=alice.pk, occurred_at=future))
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "events/0/occurred_at"
    assert not ConsentEvent.objects.exists()


def test_late_old_event_does_not_override_a_newer_choice(api, marketing, alice):
    api.post("/api/v1/consent-events/", event("new", member=alice.pk, action="withdrawn",
                                              occurred_at="2026-03-05T00:00:00Z"))  # fmt: skip
    late = api.post("/api/v1/consent-events/", event("old", member=alice.pk, occurred_at="2026-03-01T00:00:00Z"))
    assert late.json()["results"][0]["state_changed"] is False
    assert ConsentState.objects.get().action == "withdrawn"


def test_events_are_api_key_sourced(api, api_key, marketing, alice):
    api.post("/api/v1/consent-events/", event("src", member=alice.pk, evidence={"ip": "1.2.3.4"}))
    stored = ConsentEvent.objects.get()
    assert stored.source_type == "api_key" and stored.source_ref == api_key.prefix
    assert stored.evidence == {"ip": "1.2.3.4"} and stored.notice is not None


def test_batch_over_the_limit_is_400_and_over_size_is_413(api, marketing, alice, settings):
    settings.API_MAX_BATCH = 1000
    too_many = {"events": [event(f"e{i}", member=alice.pk) for i in range(1001)]}
    assert api.post("/api/v1/consent-events/", too_many).status_code == 400
    settings.API_MAX_REQUEST_BYTES = 1000
    response = api.post("/api/v1/consent-events/", {"events": [event(f"e{i}", member=alice.pk) for i in range(20)]})
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"


def test_preferences_get_and_put(api, marketing, alice):
    empty = api.get(f"/api/v1/members/{alice.pk}/preferences/")
    assert empty.status_code == 200 and empty.json()["channels"] == []
    response = api.put(f"/api/v1/members/{alice.pk}/preferences/",
                       {"channels": ["sms"], "max_per_week": 2, "quiet_start": "22:00", "topics": ["护肤"]})  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["max_per_week"] == 2 and response.json()["quiet_start"] == "22:00:00"
    assert api.get(f"/api/v1/members/{alice.pk}/preferences/").json()["topics"] == ["护肤"]
    assert PreferenceChange.objects.get().source_type == "api_key"
    bad = api.put(f"/api/v1/members/{alice.pk}/preferences/", {"max_per_week": 99})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "max_per_week"


@pytest.mark.postgres
def test_a_batch_of_1000_is_set_based(api, marketing, tmall):
    """No per-event queries: the statement count does not grow with the batch. The < 1 s
    target is measured by bench/api (a shared CI machine makes wall-clock asserts flaky;
    this one only catches a gross regression)."""
    members = make_members(tmall, 1000)
    batch = {"events": [event(f"p{i}", member=m.pk) for i, m in enumerate(members)]}
    api.post("/api/v1/consent-events/", {"events": [event("warm", member=members[0].pk)]})
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/consent-events/", batch)
    elapsed = time.perf_counter() - started
    assert response.status_code == 201
    assert ConsentEvent.objects.count() == 1001
    assert len(queries) <= 25, [q["sql"][:120] for q in queries.captured_queries]
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    assert verify_ledger().ok and state_differences() == []


def test_unused_imports_guard():
    assert ledger and Member

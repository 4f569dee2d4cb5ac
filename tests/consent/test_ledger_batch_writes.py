"""How a batch reaches the ledger (issue 27: ledger writes). ``append_many`` writes an
API-sized batch in one statement from JSON parameters and an import's chunk by COPY;
both must store the same bytes, chain and projection, and a batch must cost the same
few statements whatever its size."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent import ledger, ledger_batch
from consent.ledger_batch import NewEvent, append_many
from consent.models import ChainHead, ConsentEvent, ConsentState
from consent.services import ConsentInput, record_consent, record_consents
from consent.services.projection import check_projection
from consent.verification import verify_ledger
from tests.factories import MemberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = timezone.now().replace(microsecond=123456)
TEXTS = ["张伟", "tab\there", "line\nbreak", "cr\rhere", "back\\slash", "\\N", "quote\"'", "ls\u2028ps", "", "😀"]


def _event(member, brand, purpose, action, minutes_ago, external_id, evidence='{"row":2}', store=None):
    return NewEvent(
        member_id=member.pk, brand_id=brand.pk, purpose_id=purpose.pk, channel="sms", action=action,
        occurred_at=NOW - dt.timedelta(minutes=minutes_ago, microseconds=7), recorded_at=NOW,
        source_type="import_job", source_ref="import-job:1", store_id=store, notice_id=None, evidence=evidence,
        external_id=external_id,
    )  # fmt: skip


@pytest.fixture(params=["one-statement", "copy"])
def transport(request, monkeypatch):
    if request.param == "copy":
        monkeypatch.setattr(ledger_batch, "ONE_STATEMENT_MAX", 0)
    return request.param


def test_both_transports_store_the_same_chain_and_projection(brand, marketing_purpose, transport):
    old, other = MemberFactory(), MemberFactory()
    record_consent(member=old, brand=brand, purpose="marketing", channel="sms", action="granted",
                   source_type="store", occurred_at=NOW - dt.timedelta(minutes=5))  # fmt: skip
    events = [
        _event(old, brand, marketing_purpose, "withdrawn", 60, "x1"),  # older than the state: evidence only
        _event(other, brand, marketing_purpose, "granted", 30, None, evidence=ledger.canonical_json({"t": TEXTS})),
        _event(other, brand, marketing_purpose, "withdrawn", 20, "x3"),
        _event(old, brand, marketing_purpose, "withdrawn", 1, "x4"),
    ]
    assert append_many(events) == 3
    stored = {e.pk: e for e in ConsentEvent.objects.filter(pk__in=[e.pk for e in events])}
    for new in events:
        row = stored[new.pk]
        assert (row.member_id, row.seq, row.prev_hash, row.hash) == (new.member_id, new.seq, new.prev_hash, new.hash)
        assert (row.occurred_at, row.recorded_at) == (new.occurred_at, new.recorded_at)  # to the microsecond
        assert (row.external_id, row.store_id, row.notice_id, row.by_guardian) == (new.external_id, None, None, False)
        assert ledger.canonical_json(row.evidence) == new.evidence
        assert ledger.hash_event(row) == row.hash
    assert stored[events[1].pk].evidence == {"t": TEXTS}
    assert [e.seq for e in events] == [2, 1, 2, 3]
    assert [e.state_changed for e in events] == [False, True, True, True]
    assert ConsentState.objects.get(member=old).event_id == events[3].pk
    assert ConsentState.objects.get(member=other).action == "withdrawn"
    head = ChainHead.objects.get(member_id=old.pk)
    assert (head.seq, head.prev_hash, head.hash) == (3, events[0].hash, events[3].hash)
    assert verify_ledger().ok and check_projection().ok


def test_a_batch_costs_the_same_statements_whatever_its_size(brand, marketing_purpose):
    """The query log sees the savepoint of the test's transaction and its release, the
    external ids, the notice shown, the chain heads (locked), the ids and the states;
    the statement that writes is prepared and bound on the server, out of its sight."""
    people = [MemberFactory() for _ in range(6)]
    counts = []
    for size in (2, 60):
        items = [
            ConsentInput(member=people[i % len(people)], purpose=marketing_purpose, channel="sms",
                         action="granted" if i % 2 else "withdrawn", external_id=f"n{size}-{i}",
                         occurred_at=NOW - dt.timedelta(seconds=i), evidence={"row": i})
            for i in range(size)
        ]  # fmt: skip
        record_consents(items[:1], brand=brand, source_type="api_key")  # warm the caches (notices, subscriptions)
        with CaptureQueriesContext(connection) as captured:
            results = record_consents(items[1:], brand=brand, source_type="api_key")
        assert all(r.created for r in results)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1] <= 7, [q["sql"][:70] for q in captured.captured_queries]
    assert verify_ledger().ok and check_projection().ok


def test_a_batch_run_again_stores_nothing_new(brand, marketing_purpose):
    member = MemberFactory()
    items = [
        ConsentInput(member=member, purpose=marketing_purpose, channel="sms", action="granted", external_id=f"r{i}")
        for i in range(3)
    ]
    first = record_consents(items, brand=brand, source_type="api_key")
    again = record_consents(items, brand=brand, source_type="api_key")
    assert [r.created for r in first] == [True] * 3 and [r.created for r in again] == [False] * 3
    assert [r.event.pk for r in first] == [r.event.pk for r in again]
    assert ConsentEvent.objects.filter(member=member).count() == 3
    # The result's instances are the stored rows, as a fetch would give them.
    fetched = ConsentEvent.objects.get(pk=first[0].event.pk)
    for field in ConsentEvent._meta.concrete_fields:
        assert getattr(first[0].event, field.attname) == getattr(fetched, field.attname), field.name
    assert not first[0].event._state.adding


def test_one_event_is_one_statement(brand, marketing_purpose):
    """``record_consent`` with its purpose and notice in hand: the query log sees only the
    savepoint of the test's transaction and its release; the append (chain head, event
    and state in one statement) is prepared and bound on the server, out of its sight.
    In production that is BEGIN, the statement and COMMIT: three round trips."""
    member = MemberFactory()
    notice = marketing_purpose.notices.get()

    def record(action: str) -> None:
        record_consent(member=member, brand=brand, purpose=marketing_purpose, notice=notice, channel="sms",
                       action=action, source_type="api_key", evidence={"ip": "198.51.100.7"})  # fmt: skip

    record("granted")  # warms the subscription cache of the webhooks' receiver
    with CaptureQueriesContext(connection) as captured:
        record("withdrawn")
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["SAVEPOINT", "RELEASE"]
    assert ConsentState.objects.get(member=member).action == "withdrawn"

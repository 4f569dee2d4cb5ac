"""The ledger as evidence: append-only, chained, checkpointed, verifiable."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from consent import ledger, services, verification
from consent.models import ConsentEvent, ConsentState, LedgerVerification, Notice
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def marketing(marketing_purpose):
    return marketing_purpose


def grant(member, brand, *, action="granted", channel="sms", minutes_ago=0, **kw):
    return services.record_consent(
        member=member,
        brand=brand,
        purpose="marketing",
        channel=channel,
        action=action,
        occurred_at=NOW - dt.timedelta(minutes=minutes_ago),
        **{"source_type": "store", **kw},
    )


def verify() -> tuple[int, str]:
    try:
        call_command("verify_consent_ledger", "--json", stdout=(out := _Buffer()))
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.text


class _Buffer:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


@pytest.fixture
def tamper():
    """Run raw SQL past the append-only triggers, as an attacker with table access would."""

    def run(sql: str, params: list) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Superuser only: replica mode skips ordinary triggers.
                cursor.execute("SET session_replication_role = replica")
                cursor.execute(sql, params)
                cursor.execute("SET session_replication_role = DEFAULT")
            else:
                # SQLite has no such switch: drop the triggers (the test transaction puts them back).
                cursor.execute("DROP TRIGGER IF EXISTS consent_ledger_no_update")
                cursor.execute("DROP TRIGGER IF EXISTS consent_ledger_no_delete")
                cursor.execute(sql, params)

    return run


def test_events_chain_per_member(brand, marketing):
    a, b = MemberFactory(), MemberFactory()
    e1 = grant(a, brand).event
    e2 = grant(b, brand).event
    e3 = grant(a, brand, action="withdrawn").event
    assert (e1.seq, e2.seq, e3.seq) == (1, 1, 2)
    assert e1.prev_hash == ledger.GENESIS and e3.prev_hash == e1.hash
    assert e1.hash == ledger.hash_event(ConsentEvent.objects.get(pk=e1.pk))  # survives the database round trip
    assert verify()[0] == 0


def test_every_event_points_at_the_notice_shown(brand, marketing):
    event = grant(MemberFactory(), brand).event
    assert event.notice.title == "营销告知" and event.notice.version == 1


def test_orm_refuses_update_and_delete(brand, marketing):
    event = grant(MemberFactory(), brand).event
    with pytest.raises(ValidationError):
        ConsentEvent.objects.filter(pk=event.pk).update(action="withdrawn")
    with pytest.raises(ValidationError):
        ConsentEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ValidationError):
        event.delete()
    event.action = "withdrawn"
    with pytest.raises(ValidationError):
        event.save()


@pytest.mark.parametrize(
    "sql", ["UPDATE consent_consentevent SET action = 'withdrawn'", "DELETE FROM consent_consentevent"]
)
def test_database_refuses_raw_update_and_delete(brand, marketing, sql):
    grant(MemberFactory(), brand)
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert ConsentEvent.objects.filter(action="granted").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_truncate(brand, marketing):
    grant(MemberFactory(), brand)
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE consent_consentevent CASCADE")
    assert ConsentEvent.objects.count() == 1


def _chain(brand, n=3):
    member = MemberFactory()
    events = [
        grant(member, brand, minutes_ago=10 - i, action="granted" if i % 2 == 0 else "withdrawn").event
        for i in range(n)
    ]
    return member, events


def test_changed_field_is_reported(brand, marketing, tamper):
    _, events = _chain(brand)
    ledger.create_checkpoint()
    tamper("UPDATE consent_consentevent SET action = %s WHERE id = %s", ["granted", events[1].pk])
    code, message = verify()
    assert code == 1
    assert f"event {events[1].pk}" in message and "content does not match" in message
    assert LedgerVerification.objects.latest("started_at").ok is False


def test_deleted_middle_event_is_reported(brand, marketing, tamper):
    _, events = _chain(brand)
    tamper("DELETE FROM consent_consentevent WHERE id = %s", [events[1].pk])
    code, message = verify()
    assert code == 1
    assert f"event {events[2].pk}" in message and "missing" in message


def test_deleted_last_event_is_reported_through_the_checkpoint(brand, marketing, tamper):
    member, events = _chain(brand)
    ledger.create_checkpoint()
    # Remove the tail and the state row that pointed at it, leaving a chain that links up.
    tamper("DELETE FROM consent_consentstate WHERE event_id = %s", [events[-1].pk])
    tamper("DELETE FROM consent_consentevent WHERE id = %s", [events[-1].pk])
    code, message = verify()
    assert code == 1
    assert f"member {member.pk}" in message and "deleted from its end" in message


def test_deleted_whole_chain_is_reported_through_the_checkpoint(brand, marketing, tamper):
    member, events = _chain(brand, n=1)
    _chain(brand, n=2)
    ledger.create_checkpoint()
    tamper("DELETE FROM consent_consentstate WHERE member_id = %s", [member.pk])
    tamper("DELETE FROM consent_consentevent WHERE member_id = %s", [member.pk])
    code, message = verify()
    assert code == 1 and f"member {member.pk}: chain missing" in message


def test_rewritten_chain_is_caught_by_the_checkpoint(brand, marketing, tamper):
    """An attacker who recomputes every hash after a change is still caught: the
    checkpoint fixed the old head."""
    member, events = _chain(brand, n=2)
    ledger.create_checkpoint()
    forged = ConsentEvent.objects.get(pk=events[1].pk)
    forged.action = "granted"
    new_hash = ledger.hash_event(forged)
    tamper("UPDATE consent_consentevent SET action = %s, hash = %s WHERE id = %s", ["granted", new_hash, forged.pk])
    code, message = verify()
    assert code == 1 and "checkpoint" in message


def test_checkpoints_are_incremental_and_verify_after_more_events(brand, marketing):
    _chain(brand)
    first = ledger.create_checkpoint()
    _chain(brand)
    second = ledger.create_checkpoint()
    assert (first.event_count, second.event_count) == (3, 6)
    assert (first.chain_count, second.chain_count) == (1, 2)
    assert second.heads.count() == 1  # only the chain that changed
    _chain(brand)  # events after the last checkpoint verify too
    code, output = verify()
    assert code == 0
    assert json.loads(output.strip().splitlines()[-1])["events"] == 9


def test_verify_reads_in_batches(brand, marketing):
    for _ in range(5):
        _chain(brand, n=3)
    ledger.create_checkpoint()
    assert verification.verify_ledger(batch=2).ok
    assert verification.verify_ledger(batch=2).events_checked == 15


def test_merkle_root_is_order_sensitive_and_stable():
    leaves = [f"leaf{i}" for i in range(7)]
    assert ledger.merkle_root(iter(leaves)) == ledger.merkle_root(iter(leaves))
    assert ledger.merkle_root(iter(leaves)) != ledger.merkle_root(iter(leaves[:-1]))
    assert ledger.merkle_root(iter(reversed(leaves))) != ledger.merkle_root(iter(leaves))


def test_state_table_survives_a_rebuild(brand, marketing):
    for _ in range(3):
        _chain(brand)
    before = set(ConsentState.objects.values_list("member_id", "purpose_id", "channel", "action", "event_id"))
    call_command("rebuild_consent_state", stdout=_Buffer())
    after = set(ConsentState.objects.values_list("member_id", "purpose_id", "channel", "action", "event_id"))
    assert before == after
    call_command("rebuild_consent_state", "--check", stdout=_Buffer())


def test_notices_cannot_be_edited_or_deleted(brand, marketing):
    notice = Notice.objects.get()
    with pytest.raises(ValidationError):
        Notice.objects.filter(pk=notice.pk).update(body="changed")
    with pytest.raises(ValidationError):
        notice.delete()
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE consent_notice SET body = 'changed'")


def test_edited_notice_text_is_reported(brand, marketing, tamper):
    grant(MemberFactory(), brand)
    notice = Notice.objects.get()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS consent_notice_no_update")
        cursor.execute("UPDATE consent_notice SET body = %s WHERE id = %s", ["we may sell your data", notice.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    code, message = verify()
    assert code == 1 and f"notice {notice.pk}" in message


def test_confirmation_without_a_request_is_refused(brand, marketing):
    """Only the person answering our open request confirms (a store needs the proof of its
    own double opt-in: tests/consent/test_double_opt_in.py)."""
    member = MemberFactory()
    confirm = {"action": "confirmed", "channel": "email", "source_type": "double_opt_in"}
    with pytest.raises(services.ConsentError) as info:
        grant(member, brand, **confirm)
    assert info.value.field == "action"
    grant(member, brand, action="requested", channel="email", minutes_ago=1)
    assert grant(member, brand, **confirm).created

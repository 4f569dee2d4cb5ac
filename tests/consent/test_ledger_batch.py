"""``consent.ledger_batch.append_many``: the chain and projection of single appends."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import ledger
from consent.ledger_batch import NewEvent, append_many
from consent.models import ChainHead, ConsentEvent, ConsentState
from consent.services import record_consent
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()


class _Out:
    def write(self, s: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _event(member, brand, purpose, action, minutes_ago, external_id):
    return NewEvent(
        member_id=member.pk, brand_id=brand.pk, purpose_id=purpose.pk, channel="sms", action=action,
        occurred_at=NOW - dt.timedelta(minutes=minutes_ago), recorded_at=NOW, source_type="import_job",
        source_ref="import-job:1", store_id=None, notice_id=None, evidence='{"file_sha256":"ab","row":2}',
        external_id=external_id,
    )  # fmt: skip


@pytest.mark.parametrize("declared", [False, True], ids=["looked-up", "fresh-members"])
def test_batch_continues_chains_and_keeps_newest_state(brand, marketing_purpose, declared):
    """``declared``: the caller names the member it created (an import's new members),
    whose head and state are then copied in instead of looked up and upserted."""
    old, fresh = MemberFactory(), MemberFactory()
    record_consent(member=old, brand=brand, purpose="marketing", channel="sms", action="granted",
                   source_type="store", occurred_at=NOW - dt.timedelta(minutes=5))  # fmt: skip
    changed = append_many(
        [
            _event(old, brand, marketing_purpose, "withdrawn", 60, "x1"),  # older than the state: evidence only
            _event(fresh, brand, marketing_purpose, "granted", 30, "x2"),
            _event(fresh, brand, marketing_purpose, "withdrawn", 20, "x3"),
            _event(old, brand, marketing_purpose, "withdrawn", 1, "x4"),
        ],
        fresh_members={fresh.pk} if declared else (),
    )
    assert changed == 3  # x2, x3 and x4 moved the state; x1 is older than it
    chain = list(ConsentEvent.objects.filter(member=old).order_by("seq"))
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[1].prev_hash == chain[0].hash and chain[2].prev_hash == chain[1].hash
    assert all(ledger.hash_event(e) == e.hash for e in ConsentEvent.objects.all())
    assert ConsentState.objects.get(member=old).event.external_id == "x4"
    assert ConsentState.objects.get(member=fresh).action == "withdrawn"
    assert ChainHead.objects.get(member_id=fresh.pk).seq == 2 and ChainHead.objects.count() == 2
    # A single append after the batch goes on from the batch's head.
    record_consent(member=fresh, brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store")
    assert list(ConsentEvent.objects.filter(member=fresh).order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    call_command("verify_consent_ledger", stdout=_Out())
    call_command("rebuild_consent_state", "--check", stdout=_Out())


def test_empty_batch(db):
    assert append_many([]) == 0


TEXTS = [
    "张伟",
    "tab\there",
    "line\nbreak",
    "cr\rhere",
    "back\\slash",
    "\\N",
    "vt\x0bff\x0c",
    "ls\u2028ps",
    "",
    "'=1+1",
]


@pytest.mark.postgres
def test_esc_round_trips_through_copy(db):
    from django.db import connection

    from consent.ledger_batch import copy_lines, esc, temp_table

    with connection.cursor() as cursor:
        temp_table(cursor, "_esc_check", "n integer, value text")
        copy_lines(cursor.cursor, "_esc_check", ("n", "value"), (f"{n}\t{esc(text)}" for n, text in enumerate(TEXTS)))
        copy_lines(cursor.cursor, "_esc_check", ("n", "value"), [f"{len(TEXTS)}\t{esc(None)}"])
        cursor.execute("SELECT value FROM _esc_check ORDER BY n")
        assert [value for (value,) in cursor.fetchall()] == [*TEXTS, None]


def _role(cursor) -> str:
    cursor.execute("SHOW session_replication_role")
    return cursor.fetchone()[0]


def _try_lock_from_elsewhere(table: str, pk: int) -> str:
    """Another connection's FOR UPDATE NOWAIT on the row: "locked" or "free"."""
    import psycopg
    from django.db import connection

    with psycopg.connect(**connection.get_connection_params()) as other:
        try:
            other.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])  # noqa: S608
        except psycopg.errors.LockNotAvailable:
            return "locked"
        return "free"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batch_references_skip_row_triggers_inside_and_check_on_the_way_out(brand, marketing_purpose):
    from django.db import IntegrityError, connection, transaction

    from consent.ledger_batch import BatchReferences
    from consent.models import Purpose
    from members.models import Brand, Member

    member = MemberFactory()
    with transaction.atomic(), connection.cursor() as cursor:
        with BatchReferences() as refs:
            assert refs.active and _role(cursor) == "replica"
            refs.lock(Brand, [brand.pk])
            refs.lock(Purpose, [marketing_purpose.pk, None])
            refs.exist(Member, [member.pk])
        assert _role(cursor) == "origin"
        # the parents are locked FOR KEY SHARE until the transaction ends, as the
        # triggers would have locked them
        assert _try_lock_from_elsewhere(Brand._meta.db_table, brand.pk) == "locked"
        assert _try_lock_from_elsewhere(Purpose._meta.db_table, marketing_purpose.pk) == "locked"
    assert _try_lock_from_elsewhere(Brand._meta.db_table, brand.pk) == "free"

    for model, missing in ((Brand, brand.pk + 1000), (Member, member.pk + 1000)):
        with pytest.raises(IntegrityError, match="do not exist"), transaction.atomic(), BatchReferences() as refs:
            (refs.lock if model is Brand else refs.exist)(model, [missing])
    with transaction.atomic(), connection.cursor() as cursor:
        with pytest.raises(ZeroDivisionError), BatchReferences():
            1 / 0  # noqa: B018 - an error inside leaves the setting to the rollback
        cursor.execute("SELECT 1")


@pytest.mark.postgres
def test_batch_references_without_the_privilege_leave_the_triggers_on(db, monkeypatch):
    from django.db import connection, transaction

    from consent import ledger_batch

    monkeypatch.setattr(ledger_batch, "may_skip_reference_triggers", lambda: False)
    with transaction.atomic(), connection.cursor() as cursor, ledger_batch.BatchReferences() as refs:
        assert not refs.active and _role(cursor) == "origin"

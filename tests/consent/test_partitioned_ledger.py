"""The ledger partitioned by month on PostgreSQL (docs/consent.md, "Partitioned ledger"):
events land in their month's partition, every partition refuses changes, external ids stay
unique across months, the chain stays unique per member, verification reads a partition
at a time and still finds a changed or a missing event. Tests that need partitions skip
on SQLite, where the ledger is one table; the external-id tests run on both."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from consent import ledger, ledger_partitions, services, verification
from consent.ledger_batch import NewEvent, append_many
from consent.models import ConsentEvent, ExternalEventId, Notice, Purpose
from consent.services import ConsentInput, record_consents
from consent.tasks import create_ledger_partitions
from tests.factories import BrandFactory, MemberFactory
from tests.members.test_concurrency import run_together

NOW = timezone.now()
THIS_MONTH = ledger_partitions.month_start(NOW)
postgres_only = pytest.mark.postgres  # skipped on SQLite with "needs PostgreSQL" (tests/conftest.py)


def month_at(months_from_now: int, day: int = 15) -> dt.datetime:
    month = ledger_partitions.add_months(THIS_MONTH, months_from_now)
    return dt.datetime(month.year, month.month, day, 12, tzinfo=dt.UTC)


def new_event(member, purpose, *, recorded_at: dt.datetime | None = None, external_id: str | None = None, **kw):
    values = {
        "member_id": member.pk, "brand_id": purpose.brand_id, "purpose_id": purpose.pk, "channel": "sms",
        "action": "granted", "occurred_at": NOW - dt.timedelta(days=1), "source_type": "api_key", "source_ref": "",
        "store_id": None, "notice_id": None, "evidence": "{}", "external_id": external_id, "recorded_at": recorded_at,
    }  # fmt: skip
    return NewEvent(**{**values, **kw})


def append(*events: NewEvent) -> list[NewEvent]:
    with transaction.atomic():
        append_many(list(events))
    return list(events)


def partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM consent_consentevent WHERE id = %s", [event_id])
        return cursor.fetchone()[0]


def tamper(sql: str, params: list) -> None:
    """Past the guard, as a superuser with table access would (replica mode skips triggers)."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


# --- The table ---------------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_the_ledger_is_partitioned_by_month_of_recording():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p "
            "JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
            "WHERE p.partrelid = 'consent_consentevent'::regclass"
        )
        assert cursor.fetchone() == ("r", "recorded_at")
    names = ledger_partitions.partitions()
    ahead = [ledger_partitions.partition_name(ledger_partitions.add_months(THIS_MONTH, n)) for n in range(4)]
    assert set(ahead) <= set(names)
    assert names[-1] == "consent_consentevent_default"


@postgres_only
@pytest.mark.django_db
def test_events_land_in_their_months_partition(brand, marketing_purpose):
    member = MemberFactory()
    now, later = append(
        new_event(member, marketing_purpose, recorded_at=month_at(0)),
        new_event(member, marketing_purpose, recorded_at=month_at(2)),
    )
    assert partition_of(now.pk) == ledger_partitions.partition_name(THIS_MONTH)
    assert partition_of(later.pk) == ledger_partitions.partition_name(ledger_partitions.add_months(THIS_MONTH, 2))
    event = services.record_consent(
        member=member, brand=brand, purpose="marketing", channel="sms", action="withdrawn", source_type="api_key"
    ).event
    assert partition_of(event.pk) == ledger_partitions.partition_name(ledger_partitions.month_start(event.recorded_at))
    assert ConsentEvent.objects.get(pk=later.pk).seq == 2  # the ORM finds an event by id alone


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("statement", ["UPDATE {} SET action = 'withdrawn'", "DELETE FROM {}", "TRUNCATE {}"])
def test_a_partition_refuses_changes(brand, marketing_purpose, statement):
    (event,) = append(new_event(MemberFactory(), marketing_purpose, recorded_at=month_at(0)))
    partition = partition_of(event.pk)
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no deferred key check
        cursor.execute(statement.format(partition))
    assert ConsentEvent.objects.filter(pk=event.pk, action="granted").exists()


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("statement", ["UPDATE {} SET action = 'withdrawn'", "DELETE FROM {}", "TRUNCATE {}"])
def test_a_partition_the_task_just_created_refuses_changes(brand, marketing_purpose, statement):
    far = ledger_partitions.add_months(THIS_MONTH, 7)
    name = ledger_partitions.partition_name(far)
    assert name not in ledger_partitions.partitions()
    report = ledger_partitions.create_partitions(ahead=7)
    assert name in report.created
    (event,) = append(new_event(MemberFactory(), marketing_purpose, recorded_at=month_at(7)))
    assert partition_of(event.pk) == name
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(statement.format(name))
    with connection.cursor() as cursor:  # the chain's unique index came with it
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s", [name, f"{name}_chain"]
        )
        assert "UNIQUE" in cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db
def test_the_partition_task_is_idempotent():
    first = create_ledger_partitions()
    assert first["created"] == 0  # the migration made this month and the next ones
    report = ledger_partitions.create_partitions(ahead=5)
    assert len(report.created) == 2
    again = ledger_partitions.create_partitions(ahead=5)
    assert again.created == [] and len(again.existing) == 6
    assert settings.CELERY_BEAT_SCHEDULE["consent-ledger-partitions-daily"]["task"] == (
        "consent.tasks.create_ledger_partitions"
    )


@postgres_only
@pytest.mark.django_db
def test_the_task_gives_up_on_a_busy_ledger_and_tries_again(monkeypatch):
    """ATTACH waits for readers of the DEFAULT partition; the task waits LOCK_TIMEOUT at
    most (writers queue behind a waiting lock), reports the month busy, and the next run
    creates it."""
    monkeypatch.setattr(ledger_partitions, "LOCK_TIMEOUT", "200ms")
    reading, done = threading.Event(), threading.Event()

    def long_reader():
        with connections["default"].cursor() as cursor:  # this thread's own connection
            cursor.execute("BEGIN")
            cursor.execute("SELECT COUNT(*) FROM consent_consentevent_default")
            reading.set()
            done.wait(10)
            cursor.execute("COMMIT")
        connections.close_all()

    reader = threading.Thread(target=long_reader)
    reader.start()
    try:
        assert reading.wait(10)
        report = ledger_partitions.create_partitions(ahead=4)
    finally:
        done.set()
        reader.join()
    name = ledger_partitions.partition_name(ledger_partitions.add_months(THIS_MONTH, 4))
    assert report.busy == [name] and name not in ledger_partitions.partitions()
    assert ledger_partitions.create_partitions(ahead=4).created == [name]


@postgres_only
@pytest.mark.django_db
def test_an_event_of_a_month_without_partition_still_lands(brand, marketing_purpose):
    """Its month has no partition (the beat was away for months): the DEFAULT partition
    takes it, the consumer sees no error, it is guarded and verified like any other, and
    the task and the command say so."""
    member = MemberFactory()
    (first,) = append(new_event(member, marketing_purpose, recorded_at=month_at(0)))
    (late,) = append(new_event(member, marketing_purpose, recorded_at=month_at(20), action="withdrawn"))
    assert partition_of(late.pk) == "consent_consentevent_default"
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM consent_consentevent_default")
    assert verification.verify_ledger().ok
    report = ledger_partitions.create_partitions(ahead=20)
    assert report.blocked == [ledger_partitions.partition_name(ledger_partitions.add_months(THIS_MONTH, 20))]
    assert report.default_rows == 1
    with pytest.raises(CommandError, match="1 consent events are in the DEFAULT partition"):
        call_command("create_ledger_partitions", stdout=None)
    assert [e.pk for e in ConsentEvent.objects.filter(member=member).order_by("seq")] == [first.pk, late.pk]


# --- External ids and the chain ----------------------------------------------------------


@pytest.mark.django_db
def test_an_external_id_is_kept_with_its_event(brand, marketing_purpose):
    recorded = services.record_consent(
        member=MemberFactory(), brand=brand, purpose="marketing", channel="sms", action="granted",
        source_type="api_key", external_id="tmall-1",
    )  # fmt: skip
    row = ExternalEventId.objects.get(brand=brand, external_id="tmall-1")
    assert (row.event_id, row.recorded_at) == (recorded.event.pk, recorded.event.recorded_at)
    assert ledger.stored_events(brand.pk, ["tmall-1", "other"]) == {"tmall-1": recorded.event}
    again = services.record_consent(
        member=recorded.event.member, brand=brand, purpose="marketing", channel="sms", action="granted",
        source_type="api_key", external_id="tmall-1",
    )  # fmt: skip
    assert not again.created and again.event == recorded.event


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE consent_externaleventid SET external_id = 'x'", "DELETE FROM consent_externaleventid"]
)
def test_external_ids_refuse_changes(brand, marketing_purpose, statement):
    append(new_event(MemberFactory(), marketing_purpose, external_id="pos-7"))
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert ExternalEventId.objects.filter(external_id="pos-7").count() == 1


@postgres_only
@pytest.mark.django_db
def test_an_external_id_is_unique_across_months(brand, marketing_purpose):
    member = MemberFactory()
    append(new_event(member, marketing_purpose, recorded_at=month_at(0), external_id="jd-1"))
    with pytest.raises(IntegrityError):
        append(new_event(member, marketing_purpose, recorded_at=month_at(1), external_id="jd-1"))
    assert ConsentEvent.objects.filter(external_id="jd-1").count() == 1


def _brand_with_purpose(code: str) -> tuple:
    brand = BrandFactory(code=code)
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="M", channels=["sms"])
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
    )
    return brand, purpose


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_with_one_external_id_store_one_event():
    """Single writes and batches at once, each on its own connection: one event."""
    brand, _ = _brand_with_purpose("part-idem")
    member = MemberFactory()

    def single():
        return services.record_consent(
            member=member, brand=brand, purpose="marketing", channel="sms", action="granted",
            source_type="api_key", external_id="same",
        ).created  # fmt: skip

    def batch():
        items = [ConsentInput(member=member, purpose="marketing", channel="sms", action="granted", external_id="same")]
        return record_consents(items, brand=brand, source_type="api_key")[0].created

    results = run_together([single, batch, single, batch])
    assert sorted(results) == [False, False, False, True]
    assert ConsentEvent.objects.filter(brand=brand, external_id="same").count() == 1
    assert ExternalEventId.objects.filter(brand=brand, external_id="same").count() == 1
    assert verification.verify_ledger().ok


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_starting_a_chain_take_turns():
    """A member without a chain head: two batches at once must not both write seq 1, even
    when they land in different months' partitions (no unique index spans them)."""
    _, purpose = _brand_with_purpose("part-chain")
    member = MemberFactory()

    def batch(months: int):
        return lambda: append(*(new_event(member, purpose, recorded_at=month_at(months)) for _ in range(3)))

    run_together([batch(0), batch(1)])
    assert sorted(ConsentEvent.objects.filter(member=member).values_list("seq", flat=True)) == [1, 2, 3, 4, 5, 6]
    assert verification.verify_ledger().ok


# --- Verification, a partition at a time ---------------------------------------------------


@pytest.fixture
def chain_across_months(brand, marketing_purpose):
    """Five events of one member over three months; the fourth recorded a month before the
    third (two writers racing at the turn of a month), plus another member's chain."""
    member = MemberFactory()
    months = [0, 1, 2, 1, 2]
    events = [
        append(new_event(member, marketing_purpose, recorded_at=month_at(m, day=1 + i)))[0]
        for i, m in enumerate(months)
    ]
    append(new_event(MemberFactory(), marketing_purpose, recorded_at=month_at(1)))
    return events


@postgres_only
@pytest.mark.django_db
def test_verification_reads_partition_by_partition_and_passes_an_intact_ledger(chain_across_months):
    assert len({partition_of(e.pk) for e in chain_across_months}) == 3
    ledger.create_checkpoint()
    result = verification.verify_ledger()
    assert result.ok, result.first_error
    assert (result.events_checked, result.chains_checked) == (6, 2)


@postgres_only
@pytest.mark.django_db
def test_verification_finds_a_changed_event_in_a_partition(chain_across_months):
    victim = chain_across_months[2]
    tamper(f"UPDATE {partition_of(victim.pk)} SET action = 'withdrawn' WHERE id = %s", [victim.pk])
    result = verification.verify_ledger()
    assert not result.ok
    assert result.first_bad_event_id == victim.pk and "content does not match its hash" in result.first_error


@postgres_only
@pytest.mark.django_db
def test_verification_finds_an_event_deleted_between_partitions(chain_across_months):
    victim = chain_across_months[1]
    tamper("DELETE FROM consent_consentevent WHERE id = %s", [victim.pk])
    result = verification.verify_ledger()
    assert not result.ok
    assert result.first_bad_event_id == chain_across_months[2].pk and "an event is missing" in result.first_error


@postgres_only
@pytest.mark.django_db
def test_verification_finds_a_tail_deleted_after_a_checkpoint(chain_across_months):
    ledger.create_checkpoint()
    tamper("DELETE FROM consent_consentevent WHERE id = %s", [chain_across_months[-1].pk])
    result = verification.verify_ledger()
    assert not result.ok and "deleted from its end" in result.first_error

"""Two chunks in flight on two connections give what one chunk after the other gives.

The pipeline commits (its workers use their own connections), so these tests run with
committed data; the row-by-row reference runs inside a rolled-back transaction first.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from consent.models import ConsentEvent
from imports import pipeline as pipeline_module
from imports.copy_path import chunk as chunk_module
from imports.copy_path import planning as planning_module
from imports.service import import_member_file
from members.models import Member, StoreMembership

from .import_helpers import (
    HEADER,
    Out,
    assert_same_people,
    counts_of,
    erase,
    existing_file,
    observed_later,
    pushed_events,
    row,
    snapshot,
    subscribe_to_consent,
    tmall_file,
    write_csv,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _row_by_row(path: Path, store) -> tuple[dict, dict, list]:
    with transaction.atomic():
        result = import_member_file(path, store=store, use_copy=False)
        people = snapshot()
        transaction.set_rollback(True)
    return counts_of(result), people, result.errors


def _pipelined(path: Path, store) -> tuple[dict, dict, list]:
    result = import_member_file(path, store=store, use_copy=True, pipelined=True)
    assert result.path == "copy"
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=Out())
    return counts_of(result), snapshot(), result.errors


def _pipeline_stats(caplog) -> dict[str, int]:
    message = [r.getMessage() for r in caplog.records if r.getMessage().startswith("import pipeline:")][-1]
    numbers = re.match(
        r"import pipeline: (\d+) chunks, (\d+) waited .*, (\d+) started over, (\d+) retried, (\d+) late rows", message
    )
    return dict(zip(("chunks", "waited", "restarted", "retried", "late"), map(int, numbers.groups()), strict=True))


def _assert_same(expected: tuple, got: tuple) -> None:
    (counts, people, errors), (got_counts, got_people, got_errors) = expected, got
    assert got_counts == counts
    assert got_errors == errors  # the same rows refused, in the same order
    assert_same_people(people, got_people)


def _crowded_file(tmp_path: Path, *, rows: int = 160, seed: int = 5) -> Path:
    """Rows of a few dozen people: one person in neighbouring chunks, rows that link two
    people (merges), member ids repeated, JD customers, consents given and withdrawn."""
    rng = random.Random(seed)
    people = [
        {
            "phone": f"1390000{n:04d}",
            "email": f"p{n}@example.com",
            "unionid": f"oUcrowd{n:06d}",
        }
        for n in range(30)
    ] + [{"phone": "13800000001", "email": "", "unionid": ""}, {"phone": "", "email": "e2@example.com", "unionid": ""}]
    lines = []
    for n in range(rows):
        person = rng.choice(people)
        values: dict[str, str] = {}
        if person["phone"] and rng.random() < 0.7:
            digits = person["phone"]
            values["phone"] = rng.choice([digits, f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}", "86" + digits])
        if person["email"] and rng.random() < 0.4:
            values["email"] = person["email"].upper() if rng.random() < 0.2 else person["email"]
        if person["unionid"] and rng.random() < 0.2:
            values["wechat_unionid"] = person["unionid"]
        if rng.random() < 0.04:  # a second person's e-mail: a merge
            values["email"] = rng.choice(people[:30])["email"]
        if rng.random() < 0.5:
            values["name"] = rng.choice(["甲", "乙", "丙", "丁"])
        if rng.random() < 0.3:
            values["city"] = rng.choice(["上海", "杭州"])
        if rng.random() < 0.2:
            values["tier"] = rng.choice(["金卡", "银卡"])
        values["joined_at"] = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 10:00:00"
        for column in ("consent_marketing_sms", "consent_marketing_email", "consent_personalization"):
            if rng.random() < 0.3:
                values[column] = rng.choice(["1", "0"])
        if rng.random() < 0.5:
            values["consent_at"] = f"2024-0{rng.randint(1, 9)}-0{rng.randint(1, 9)} 0{rng.randint(0, 9)}:00:00"
        member_id = f"C{rng.randrange(rows) if rng.random() < 0.05 else n}"
        lines.append(row(member_id, **values))
    for _ in range(5):  # refused by validation, mid-file: chunks of refused rows only
        lines.insert(rows // 2, row("", name="无编号"))
    return write_csv(tmp_path / "crowded.csv", lines, header=HEADER)


@pytest.fixture
def known(tmp_path, jd, purposes):
    """JD's customers, one observed after the files to come, and one who had their data
    erased."""
    import_member_file(existing_file(tmp_path), store=jd, use_copy=False)
    import_member_file(write_csv(tmp_path / "gone.csv", [row("J9", phone="13800000099")]), store=jd, use_copy=False)
    observed_later("J4")
    erase("J9")


@pytest.mark.parametrize("chunk", [3, 1000])
def test_pipeline_equals_row_by_row(tmp_path, tmall, known, settings, chunk):
    settings.IMPORT_CHUNK_ROWS = chunk
    path = tmall_file(tmp_path)
    expected = _row_by_row(path, tmall)
    assert expected[0]["merged"] == 2 and expected[0]["rejected"] == 3
    _assert_same(expected, _pipelined(path, tmall))


@pytest.mark.parametrize(
    ("chunk", "seed", "late_min"), [(2, 1, 50), (5, 2, 50), (5, 2, 0), (16, 3, 50), (16, 6, 0), (1000, 4, 50)]
)
def test_pipeline_equals_row_by_row_on_a_crowded_file(
    tmp_path, tmall, known, settings, caplog, monkeypatch, chunk, seed, late_min
):
    """late_min 0: every chunk that shares a person with the one before waits for its
    commit; 50: those rows go in after it, row by row, while the rest of the chunk is
    planned and written at once."""
    settings.IMPORT_CHUNK_ROWS = chunk
    monkeypatch.setattr(planning_module, "LATE_ROWS_MIN", late_min)
    path = _crowded_file(tmp_path, seed=seed)
    expected = _row_by_row(path, tmall)
    assert expected[0]["merged"] > 0 and expected[0]["rejected"] > 0 and expected[0]["consent_events"] > 0
    with caplog.at_level(logging.INFO, logger="imports.pipeline"):
        _assert_same(expected, _pipelined(path, tmall))
    stats = _pipeline_stats(caplog)
    # Chunks that share people waited for each other, or set the shared rows aside,
    # instead of colliding and retrying.
    assert stats["retried"] == 0 and stats["restarted"] == 0
    if stats["chunks"] > 1:
        assert stats["late" if late_min else "waited"] > 0, stats
    # Again: nothing new.
    again = import_member_file(path, store=tmall, use_copy=True, pipelined=True)
    assert (again.created, again.merged, again.consent_events) == (0, 0, 0)


def test_a_chunk_that_loses_a_race_is_retried_with_its_successor(tmp_path, tmall, known, settings, monkeypatch):
    """A concurrent writer's IntegrityError in chunk 2 (while chunk 3 is planned against
    it): both run again, in order, and the result is the one of an undisturbed import.
    Webhook subscribers get each event once (not those of the attempts rolled back), a
    person's in the order of their chain."""
    settings.IMPORT_CHUNK_ROWS = 4
    path = _crowded_file(tmp_path, rows=40, seed=9)
    expected = _row_by_row(path, tmall)
    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    before = set(ConsentEvent.objects.values_list("pk", flat=True))
    failed: set[int] = set()
    write = chunk_module.write

    def flaky(ctx, rows, plan, result, rejected):
        write(ctx, rows, plan, result, rejected)
        numbers = {r.number for r in rows}
        for number in (10, 31):
            if number in numbers and number not in failed:
                failed.add(number)
                raise IntegrityError("duplicate key value violates unique constraint (simulated)")

    monkeypatch.setattr(chunk_module, "write", flaky)
    _assert_same(expected, _pipelined(path, tmall))
    assert failed == {10, 31}
    chains = {pk: (member, seq) for pk, member, seq in ConsentEvent.objects.values_list("pk", "member_id", "seq")}
    recorded = sorted(set(chains) - before)
    pushed = pushed_events()
    assert len(recorded) == expected[0]["consent_events"] > 0
    assert sorted(event["id"] for event in pushed) == recorded
    by_chain = sorted(pushed, key=lambda event: chains[event["id"]])
    for earlier, later in itertools.pairwise(by_chain):
        if chains[earlier["id"]][0] == chains[later["id"]][0]:
            assert earlier["sequence"] < later["sequence"]


def test_a_chunk_that_fails_for_good_stops_the_chunks_after_it(tmp_path, tmall, purposes, settings, monkeypatch):
    settings.IMPORT_CHUNK_ROWS = 3
    path = write_csv(tmp_path / "t.csv", [row(f"S{n}", phone=f"1370000{n:04d}") for n in range(15)])
    write = chunk_module.write

    def broken(ctx, rows, plan, result, rejected):
        if any(r.record.store_member_id == "S7" for r in rows):
            raise RuntimeError("disk full (simulated)")
        write(ctx, rows, plan, result, rejected)

    monkeypatch.setattr(chunk_module, "write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        import_member_file(path, store=tmall, use_copy=True, pipelined=True)
    # Chunks 1 and 2 (rows S0-S5) went in, as they would have one after the other; the
    # failed chunk and those after it left nothing.
    imported = set(StoreMembership.objects.values_list("store_member_id", flat=True))
    assert imported == {f"S{n}" for n in range(6)}
    assert Member.objects.count() == 6


def test_a_dependency_the_check_misses_neither_hangs_nor_changes_the_result(
    tmp_path, tmall, purposes, settings, caplog, monkeypatch
):
    """The safety net. With the independence check switched off, chunk 2 does not see the
    person chunk 1 is creating and writes the same phone first; chunk 1 then waits for
    chunk 2's lock while chunk 2 waits for chunk 1's commit. Chunk 2 notices, steps back
    and runs after chunk 1: no hang, and the result of one chunk after the other."""
    settings.IMPORT_CHUNK_ROWS = 2
    path = write_csv(
        tmp_path / "t.csv",
        [row("A1", phone="13700000001"), row("B1", phone="13700000002"),
         row("A2", phone="13700000001", name="甲"), row("C1", phone="13700000003")],
    )  # fmt: skip
    expected = _row_by_row(path, tmall)
    monkeypatch.setattr(pipeline_module._PipelineTurn, "pending", lambda self: None)
    write = chunk_module.write

    def slow_first_chunk(ctx, rows, plan, result, rejected):
        if rows[0].number == 2:
            time.sleep(1.5)  # chunk 2 writes its rows meanwhile
        write(ctx, rows, plan, result, rejected)

    monkeypatch.setattr(chunk_module, "write", slow_first_chunk)
    with caplog.at_level(logging.INFO, logger="imports.pipeline"):
        _assert_same(expected, _pipelined(path, tmall))
    assert _pipeline_stats(caplog)["restarted"] >= 1


def test_each_chunk_writes_its_webhook_rows_with_its_events(tmp_path, tmall, purposes, settings, monkeypatch):
    """The pipelined COPY path announces each chunk's events inside that chunk's
    transaction: one publishing outbox row per chunk, written with its events, so a
    broker that is down delays the webhooks and loses none (tests/cdp/test_outbox.py)."""
    from cdp.models import OutboxMessage

    from .import_helpers import pushed_events, subscribe_to_consent

    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    settings.IMPORT_CHUNK_ROWS = 3
    path = write_csv(tmp_path / "t.csv", [row(f"S{n}", phone=f"1370000{n:04d}", consent_marketing_sms="1")
                                          for n in range(9)])  # fmt: skip
    result = import_member_file(path, store=tmall, use_copy=True, pipelined=True)
    assert (result.created, result.consent_events) == (9, 9)
    assert OutboxMessage.objects.filter(task="webhooks.tasks.publish_events").count() == 3
    assert sorted(p["id"] for p in pushed_events()) == sorted(ConsentEvent.objects.values_list("pk", flat=True))

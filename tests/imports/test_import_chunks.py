"""A big file's job runs as chunk tasks (imports.chunks) and ends exactly as the file
imported in one go: the same people, identities, memberships, merges, consent events,
counts and rejected rows. In process here (SQLite's row-by-row path, PostgreSQL's COPY
path); tests/imports/test_import_chunks_workers.py shares a file between two real workers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import transaction

from cdp.models import AuditLog, OutboxMessage
from consent.models import ConsentEvent
from imports import tasks
from imports.models import ImportJob
from imports.service import import_member_file

from .import_helpers import (
    Out,
    assert_same_people,
    counts_of,
    erase,
    existing_file,
    observed_later,
    row,
    snapshot,
    tmall_file,
    write_csv,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def queued_job(store, path: Path) -> ImportJob:
    """An upload confirmed in the admin: a waiting job with its file."""
    content = path.read_bytes()
    job = ImportJob.objects.create(store=store, original_name=path.name, size=len(content), created_by="root")
    job.file.save(path.name, ContentFile(content))
    return job


def in_one_go(path: Path, store) -> tuple[dict, dict, list]:
    """The file imported by one ``import_member_file`` (the command, the admin's small
    files): counts, people and rejected rows as a job keeps them; rolled back."""
    stored = io.StringIO()
    with transaction.atomic():
        result = import_member_file(path, store=store, errors_stored_to=stored)
        people = snapshot()
        transaction.set_rollback(True)
    return counts_of(result), people, rejected_rows(stored.getvalue())


def rejected_rows(text: str) -> list:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def job_counts(job: ImportJob) -> dict:
    job.refresh_from_db()
    return {
        "rows": job.rows_total, "created": job.created, "updated": job.updated, "merged": job.merged,
        "rejected": job.rejected, "consent_events": job.consent_events,
    }  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 4, 6])
def test_chunked_job_equals_the_file_in_one_go(tmp_path, media, tmall, jd, purposes, settings, chunk):
    """Merges, refused rows (a bad phone, a member id again later, an erased person),
    survivorship against a newer observation and consent events, with chunk boundaries
    everywhere: between the two rows of one person, between a row and its later repeat."""
    settings.IMPORT_SPLIT_ROWS = 5
    settings.IMPORT_CHUNK_ROWS = chunk
    import_member_file(existing_file(tmp_path), store=jd)
    import_member_file(write_csv(tmp_path / "gone.csv", [row("J9", phone="13800000099")]), store=jd)
    erase("J9")
    observed_later("J4")
    path = tmall_file(tmp_path)
    expected_counts, expected, expected_rejected = in_one_go(path, tmall)

    job = queued_job(tmall, path)
    assert tasks.run_import_job(job.pk) is None  # split: the chunks finish the job

    job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.rows_done, job.rows_total) == (14, 14)
    assert job_counts(job) == {k: v for k, v in expected_counts.items() if k != "seconds"}
    assert_same_people(expected, snapshot())
    assert rejected_rows(job.errors_file.read().decode("utf-8")) == expected_rejected
    assert expected_counts["rejected"] == 3 and expected_counts["merged"] == 2
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=Out())
    # One audit row for the import, as for a file in one go; the split's files are gone.
    [imported] = AuditLog.objects.filter(action="members.imported", object_type="imports.importjob")
    assert imported.changes["created"] == expected_counts["created"]
    assert not (Path(media) / "imports" / "chunks" / f"{job.pk}-1").exists()


def test_a_chunk_delivered_again_changes_nothing(tmp_path, media, tmall, purposes, settings):
    settings.IMPORT_SPLIT_ROWS = 2
    settings.IMPORT_CHUNK_ROWS = 2
    rows = [row(f"M{n}", phone=f"1380000{n:04d}", consent_marketing_sms="1") for n in range(5)]
    job = queued_job(tmall, write_csv(tmp_path / "m.csv", rows))
    tasks.run_import_job(job.pk)
    before = job_counts(job)
    events = ConsentEvent.objects.count()

    for index in range(3):  # Redis redelivering every chunk after the job finished
        tasks.import_chunk(job.pk, 1, index, 2)
    tasks.run_import_job(job.pk)  # and the job's own task: not waiting any more

    assert job_counts(job) == before == {"rows": 5, "created": 5, "updated": 0, "merged": 0, "rejected": 0,
                                         "consent_events": 5}  # fmt: skip
    assert ConsentEvent.objects.count() == events == 5
    assert ImportJob.objects.get(pk=job.pk).status == "done"


def test_chunk_tasks_in_a_window_and_a_redelivered_chunk_mid_import(
    tmp_path, media, tmall, purposes, settings, monkeypatch
):
    """As on a broker: the split queues IMPORT_CHUNKS_AHEAD chunks, each commit queues the
    one that many after it. A chunk Redis delivers again while the import runs (its first
    delivery committed) neither counts its rows again nor queues its follower twice."""
    settings.IMPORT_SPLIT_ROWS = 2
    settings.IMPORT_CHUNK_ROWS = 2
    settings.IMPORT_CHUNKS_AHEAD = 2
    rows = [row(f"M{n}", phone=f"1380000{n:04d}", consent_marketing_sms="1") for n in range(5)]
    rows.insert(1, row("BAD", phone="12"))  # rejected, in the first chunk
    job = queued_job(tmall, write_csv(tmp_path / "m.csv", rows))
    queued: list[tuple] = []
    monkeypatch.setattr("cdp.broker.is_eager", lambda: False)
    monkeypatch.setattr("imports.chunks.enqueue_on_commit", lambda task, *args: queued.append(args))

    tasks.run_import_job(job.pk)
    assert queued == [(job.pk, 1, 0, 2), (job.pk, 1, 1, 2)]
    tasks.import_chunk(*queued[0])
    tasks.import_chunk(*queued[0])  # delivered again
    assert queued[2:] == [(job.pk, 1, 2, 2)]
    assert (job_counts(job)["rejected"], job.rows_done, job.status) == (1, 2, "running")
    tasks.import_chunk(*queued[1])
    tasks.import_chunk(*queued[2])

    assert len(queued) == 3  # nothing after the last chunk
    assert job_counts(job) == {"rows": 6, "created": 5, "updated": 0, "merged": 0, "rejected": 1,
                               "consent_events": 5}  # fmt: skip
    assert (job.rows_done, job.status) == (6, "done")
    assert ConsentEvent.objects.count() == 5
    assert rejected_rows(job.errors_file.read().decode("utf-8"))[1][:2] == ["3", "phone"]
    assert not OutboxMessage.objects.exists()  # nothing else went to the (patched-in) broker


def test_chunks_of_a_stopped_attempt_do_nothing(tmp_path, media, tmall, purposes, settings):
    """Beat failed the job (its worker died) and a person retried it: chunks of the first
    attempt that Redis still delivers find the job in another attempt."""
    settings.IMPORT_SPLIT_ROWS = 2
    settings.IMPORT_CHUNK_ROWS = 2
    rows = [row(f"M{n}", phone=f"1380000{n:04d}") for n in range(5)]
    job = queued_job(tmall, write_csv(tmp_path / "m.csv", rows))
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=2)  # attempt 2 holds it

    tasks.import_chunk(job.pk, 1, 0, 2)

    job.refresh_from_db()
    assert (job.rows_done, job.created, job.status) == (0, 0, "running")
    assert not ConsentEvent.objects.exists()


def test_a_small_file_stays_one_task(tmp_path, media, tmall, purposes, settings):
    settings.IMPORT_SPLIT_ROWS = 5
    settings.IMPORT_CHUNK_ROWS = 2
    rows = [row(f"M{n}", phone=f"1380000{n:04d}") for n in range(5)]
    job = queued_job(tmall, write_csv(tmp_path / "m.csv", rows))

    assert tasks.run_import_job(job.pk)["created"] == 5

    assert not OutboxMessage.objects.filter(task="imports.tasks.import_chunk").exists()
    assert ImportJob.objects.get(pk=job.pk).status == "done"


def test_a_broken_file_fails_the_job_before_any_chunk(tmp_path, media, tmall, purposes, settings):
    settings.IMPORT_SPLIT_ROWS = 1
    path = write_csv(tmp_path / "bad.csv", [["13800000001", "x"]] * 3, header=["phone", "name"])
    job = queued_job(tmall, path)

    assert tasks.run_import_job(job.pk) is None

    job.refresh_from_db()
    assert job.status == "failed" and "no member id column" in job.message
    assert not ConsentEvent.objects.exists()


def test_a_spreadsheet_splits_too(tmp_path, media, tmall, purposes, settings):
    from openpyxl import Workbook

    settings.IMPORT_SPLIT_ROWS = 2
    settings.IMPORT_CHUNK_ROWS = 2
    workbook = Workbook()
    workbook.active.append(["会员ID", "手机号", "姓名", "入会时间", "短信营销授权"])
    for n in range(5):
        workbook.active.append([f"X{n}", f"1380013{n:04d}", f"会员{n}", "2024-03-01 11:00:00", "是"])
    workbook.save(tmp_path / "m.xlsx")
    job = queued_job(tmall, tmp_path / "m.xlsx")

    tasks.run_import_job(job.pk)

    assert job_counts(job) == {"rows": 5, "created": 5, "updated": 0, "merged": 0, "rejected": 0,
                               "consent_events": 5}  # fmt: skip
    assert job.status == "done"

"""Two real ``celery worker`` processes share one member file as chunk tasks
(imports.chunks) and end exactly where one import of the file in one go ends: the same
people, identities, memberships, merges, consent events, counts and rejected rows. Redis
broker, PostgreSQL, the COPY path."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from cdp.enqueue import enqueue_on_commit
from imports.models import ImportJob
from tests.workers import start_worker, stop_worker, wait_for

from .import_helpers import Out, assert_same_people, row, snapshot, write_csv
from .test_import_chunks import in_one_go, job_counts, rejected_rows

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROWS = 2000
CHUNK = 250  # eight chunks
SPLIT = 500


def phone(n: int) -> str:
    return f"1380013{n:04d}"


def member_file(tmp_path):
    """New people, and rows that reach people of earlier chunks: the same phone as a row
    300 before (the same person, a second membership), also the e-mail of a row 450 before
    (two people merged), a member id again 100 rows later (the later row wins), bad phones."""
    rows = []
    for n in range(ROWS):
        values = {"phone": phone(n), "name": f"会员{n}", "city": ("上海", "杭州", "北京")[n % 3],
                  "consent_marketing_sms": "1" if n % 2 else "0", "consent_at": "2024-01-01 10:00"}  # fmt: skip
        member_id = f"M{n}"
        if n % 5 == 0:
            values["email"] = f"e{n}@example.com"
        if n >= 300 and n % 7 == 0:
            values["phone"] = phone(n - 300)
        if n >= 450 and n % 77 == 0:
            values["email"] = f"e{n - 450}@example.com" if (n - 450) % 5 == 0 else f"e{n - 455}@example.com"
        if n >= 100 and n % 97 == 0:
            member_id = f"M{n - 100}"
        if n % 53 == 0:
            values["phone"] = "12"
        if n % 3 == 0:
            values["consent_personalization"] = "1"
        rows.append(row(member_id, **values))
    return write_csv(tmp_path / "members.csv", rows)


def test_two_workers_import_one_file_as_one_would(real_celery, tmall, jd, purposes, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_CHUNK_ROWS = CHUNK  # the file in one go commits the same chunks
    path = member_file(tmp_path)
    expected_counts, expected, expected_rejected = in_one_go(path, tmall)
    assert expected_counts["merged"] > 0 and expected_counts["rejected"] > 0

    content = path.read_bytes()
    job = ImportJob.objects.create(store=tmall, original_name="members.csv", size=len(content), created_by="root")
    job.file.save("members.csv", ContentFile(content))
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT), "IMPORT_CHUNK_ROWS": str(CHUNK), "IMPORT_SPLIT_ROWS": str(SPLIT)}
    workers = [start_worker(**env), start_worker(**env)]
    try:
        enqueue_on_commit("imports.tasks.run_import_job", job.pk)  # what "confirm" does
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists(), 240,
                 "the chunks to finish")  # fmt: skip
    finally:
        for worker in workers:
            stop_worker(worker)
    logs = [worker.stdout.read() for worker in workers]

    job.refresh_from_db()
    assert job.status == "done", job.message
    chunks_run = [len(re.findall(r"imports\.tasks\.import_chunk\[[^]]+\] succeeded", log)) for log in logs]
    assert sum(chunks_run) >= ROWS // CHUNK and min(chunks_run) >= 1, chunks_run  # both took chunks
    assert job_counts(job) == {k: v for k, v in expected_counts.items() if k != "seconds"}
    assert (job.rows_done, job.rows_total) == (ROWS, ROWS)
    assert_same_people(expected, snapshot())
    assert rejected_rows(job.errors_file.read().decode("utf-8")) == expected_rejected
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=io.StringIO())

"""An import whose worker is killed half-way ends with every row imported exactly once:
either Redis redelivers the task and it claims the stale job, or beat marks the job failed
and a person retries it from the admin. Real ``celery worker`` processes, Redis broker,
PostgreSQL, the pipelined COPY path."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from cdp.models import AuditLog
from consent.models import ConsentEvent
from imports import tasks
from imports.models import ImportJob
from imports.service import import_member_file
from members.models import Identity, Member, StoreMembership
from tests.workers import database_url, start_worker, stop_worker, wait_for

from .import_helpers import row, write_csv

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ROWS = 300
CHUNK = 50
LOCKED_ROW = 180  # in the fourth chunk: three chunks commit, the fourth waits for a lock
STALE = 5  # seconds without a heartbeat before a job counts as abandoned


def phone(n: int) -> str:
    return f"1380013{n:04d}"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.JOBS_STALE_AFTER_SECONDS = STALE
    return str(settings.MEDIA_ROOT)


def worker(media: str, **env: str):
    return start_worker(MEDIA_ROOT=media, IMPORT_CHUNK_ROWS=str(CHUNK), JOBS_STALE_AFTER_SECONDS=str(STALE), **env)


def queued_job(store, tmp_path) -> ImportJob:
    rows = [row(f"M{n}", phone=phone(n), consent_marketing_sms="1") for n in range(ROWS)]
    content = write_csv(tmp_path / "members.csv", rows).read_bytes()
    job = ImportJob.objects.create(store=store, original_name="members.csv", size=len(content), created_by="root")
    job.file.save("members.csv", ContentFile(content))
    return job


def kill_mid_import(job: ImportJob, media: str, jd, tmp_path) -> None:
    """Start the job on a worker, hold it at its fourth chunk with a row lock on a member
    that chunk looks up, SIGKILL the worker there, and let the orphaned transaction end."""
    # The person of row LOCKED_ROW is already a member (through another store).
    import_member_file(write_csv(tmp_path / "jd.csv", [row("J1", phone=phone(LOCKED_ROW))]), store=jd)
    known = Identity.objects.get(value=f"+86{phone(LOCKED_ROW)}").member_id
    blocker = psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(f"SELECT id FROM {Member._meta.db_table} WHERE id = %s FOR UPDATE", [known])
    process = worker(media)
    try:
        from cdp.enqueue import enqueue_on_commit

        enqueue_on_commit("imports.tasks.run_import_job", job.pk)  # what "confirm" does
        wait_for(
            lambda: ImportJob.objects.filter(pk=job.pk, status="running", rows_done__gte=3 * CHUNK).exists(),
            90,
            "three chunks to commit",
        )
        time.sleep(1)  # the fourth chunk now waits for the lock
        assert ImportJob.objects.get(pk=job.pk).rows_done == 3 * CHUNK
        process.kill()  # SIGKILL: no shutdown, no ack, no "failed"
        process.wait(timeout=10)
    finally:
        blocker.rollback()  # the orphaned backends finish their statements and roll back
        blocker.close()
        stop_worker(process)
    assert ImportJob.objects.get(pk=job.pk).status == "running"


def assert_imported_once(job: ImportJob) -> None:
    job.refresh_from_db()
    assert job.status == "done", job.message
    assert (job.rows_total, job.rows_done, job.rejected) == (ROWS, ROWS, 0)
    assert job.attempts == 2
    # Every row once: one membership, one consent event each; counted once across attempts.
    assert StoreMembership.objects.filter(store=job.store).count() == ROWS
    assert ConsentEvent.objects.filter(source_ref=job.source_ref).count() == ROWS
    assert job.consent_events == ROWS
    assert job.created == Member.objects.count() - 1  # all but the member who was there before
    assert job.created + job.updated == ROWS


def test_killed_import_is_failed_by_beat_and_retried_from_the_admin(
    real_celery, superuser, tmall, jd, purposes, media, tmp_path
):
    job = queued_job(tmall, tmp_path)
    kill_mid_import(job, media, jd, tmp_path)

    time.sleep(STALE + 1)
    assert tasks.mark_stalled_jobs() == 1  # what beat runs every minute
    job.refresh_from_db()
    assert job.status == "failed"
    assert f"{3 * CHUNK} of {ROWS} rows processed" in job.message

    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(superuser)
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk])).content.decode()
    assert "The worker stopped without finishing" in page
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    # A long visibility timeout: the killed task's message is not redelivered meanwhile.
    process = worker(media)
    try:
        response = client.post(reverse("admin:imports_importjob_retry", args=[job.pk]), {"csrfmiddlewaretoken": token})
        assert response.status_code == 302
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status="done").exists(), 120, "the retry to finish")
    finally:
        stop_worker(process)
    assert_imported_once(job)
    assert AuditLog.objects.filter(action="members.import_retried", actor_label="root").count() == 1


def test_killed_import_is_redelivered_and_finished(real_celery, tmall, jd, purposes, media, tmp_path):
    job = queued_job(tmall, tmp_path)
    kill_mid_import(job, media, jd, tmp_path)

    # Redis hands the unacknowledged task to the next worker once it is older than the
    # visibility timeout; the job's heartbeat is older than the stale window by then, so
    # the redelivered task claims it (before beat would have marked it failed).
    time.sleep(STALE + 1)
    process = worker(media, CELERY_VISIBILITY_TIMEOUT="3")
    try:
        wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status="done").exists(), 120, "the redelivered import")
    finally:
        stop_worker(process)
    assert_imported_once(job)

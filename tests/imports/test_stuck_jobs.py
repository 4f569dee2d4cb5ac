"""Stuck imports recover: a job whose worker died is marked failed by beat with a reason the
admin shows, and a retry from the admin imports the file to the end, counting every row
once (docs/operations.md, "Stuck work")."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent.models import ConsentEvent
from imports import jobs, service, tasks
from imports.models import ImportJob
from members.models import Member

from .import_helpers import row, write_csv

pytestmark = pytest.mark.django_db

ROWS = [
    row("A1", phone="13800138001", consent_marketing_sms="1"),
    row("A2", phone="123"),  # rejected: not a phone number
    row("A3", phone="13800138003", consent_marketing_sms="1"),
    row("A4", phone="13800138004", consent_marketing_sms="1"),
    row("A5", phone="13800138005", consent_marketing_sms="1"),
    row("A6", phone="13800138006", consent_marketing_sms="1"),
]


ORIGINAL_WRITER = service._writer


class WorkerDied(BaseException):
    """A SIGKILL as the import sees it: nothing after it runs, not even ``except Exception``."""


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def small_chunks(monkeypatch, settings):
    monkeypatch.setattr(service, "ROW_BY_ROW_CHUNK_ROWS", 2)
    settings.IMPORT_CHUNK_ROWS = 2


@pytest.fixture
def job(tmall, purposes, tmp_path):
    content = write_csv(tmp_path / "members.csv", ROWS).read_bytes()
    made = ImportJob.objects.create(store=tmall, original_name="members.csv", size=len(content), created_by="root")
    made.file.save("members.csv", ContentFile(content))
    return made


def die_after_chunks(monkeypatch, chunks: int, *, then=None) -> None:
    """Chunks of two rows; the worker dies (or ``then`` runs) once ``chunks`` have committed.
    Either path: the COPY path on PostgreSQL, row by row elsewhere."""
    calls = {"n": 0}

    def writer(use_copy: bool):
        process_rows, _size = ORIGINAL_WRITER(use_copy)

        def dying(ctx, rows, **kwargs):
            if calls["n"] == chunks:
                if then is None:
                    raise WorkerDied
                then()
            calls["n"] += 1
            return process_rows(ctx, rows, **kwargs)

        return dying, 2

    monkeypatch.setattr(service, "_writer", writer)


def stuck_job(job, monkeypatch) -> ImportJob:
    """Run ``job`` until its worker dies after two chunks, then let time pass."""
    die_after_chunks(monkeypatch, 2)
    with pytest.raises(WorkerDied):
        jobs.run_job(job.pk)
    monkeypatch.setattr(service, "_writer", ORIGINAL_WRITER)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.created, job.consent_events) == ("running", 4, 3, 3)
    ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=6))
    return job


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English
    client.force_login(user)
    return client


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_beat_marks_a_stuck_job_failed_and_the_admin_shows_why(job, small_chunks, monkeypatch, superuser):
    stuck_job(job, monkeypatch)

    assert tasks.mark_stalled_jobs() == 1  # what beat runs every minute
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert job.message.startswith("The worker stopped without finishing; last progress at ")
    assert "4 of 6 rows processed. Retry it from the admin" in job.message
    local = timezone.localtime(job.heartbeat_at).strftime("%Y-%m-%d %H:%M:%S")
    assert local in job.message
    assert AuditLog.objects.filter(action="members.import_stalled", object_id=str(job.pk)).exists()

    client = csrf_client(superuser)
    page = client.get(reverse("admin:imports_importjob_change", args=[job.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "The worker stopped without finishing" in text and "Retry the import" in text


def test_retry_from_the_admin_finishes_with_every_row_counted_once(
    job, small_chunks, monkeypatch, superuser, django_capture_on_commit_callbacks
):
    stuck_job(job, monkeypatch)
    jobs.mark_stalled_jobs()
    client = csrf_client(superuser)
    url = reverse("admin:imports_importjob_change", args=[job.pk])
    token = csrf_token(client.get(url).content.decode())

    with django_capture_on_commit_callbacks(execute=True):  # the outbox sends the task on commit
        response = client.post(
            reverse("admin:imports_importjob_retry", args=[job.pk]), {"csrfmiddlewaretoken": token}, follow=True
        )
    assert response.status_code == 200
    assert "is queued again" in response.content.decode()
    # The worker ran the task (here in-process, once the retry committed).
    assert ">Done<" in client.get(url).content.decode()
    job.refresh_from_db()
    assert job.status == "done" and job.message == ""
    assert (job.rows_total, job.rows_done, job.progress) == (6, 6, 100)
    # Three members came in before the worker died, two after: each counted once; the bad
    # row is rejected once, not once per attempt.
    assert (job.created, job.updated, job.rejected, job.consent_events) == (5, 0, 1, 5)
    assert job.attempts == 2
    assert Member.objects.count() == 5 and ConsentEvent.objects.count() == 5
    assert set(ConsentEvent.objects.values_list("source_ref", flat=True)) == {f"import-job:{job.pk}"}
    retried = AuditLog.objects.get(action="members.import_retried", object_id=str(job.pk))
    assert retried.actor_label == "root" and "worker stopped" in retried.changes["reason"]
    assert job.errors_file and b"not a valid phone number" in job.errors_file.read()


def test_retry_needs_a_csrf_token_a_post_and_the_permission(job, small_chunks, monkeypatch, superuser, marketer):
    stuck_job(job, monkeypatch)
    jobs.mark_stalled_jobs()
    url = reverse("admin:imports_importjob_retry", args=[job.pk])
    assert csrf_client(superuser).post(url).status_code == 403  # no token
    assert csrf_client(superuser).get(url).status_code == 405
    client = Client()
    client.force_login(marketer)
    assert client.post(url).status_code == 403
    job.refresh_from_db()
    assert job.status == "failed"
    assert not AuditLog.objects.filter(action="members.import_retried").exists()


def test_retry_action_on_the_list_skips_jobs_that_did_not_fail(
    job, small_chunks, monkeypatch, superuser, tmall, django_capture_on_commit_callbacks
):
    stuck_job(job, monkeypatch)
    jobs.mark_stalled_jobs()
    finished = ImportJob.objects.create(store=tmall, original_name="done.csv", status="done")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(superuser)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:imports_importjob_changelist"),
            {"action": "retry_selected", "_selected_action": [job.pk, finished.pk]},
            follow=True,
        )
    page = response.content.decode()
    assert "Only a failed import can be retried." in page
    assert ImportJob.objects.get(pk=job.pk).status == "done"
    assert ImportJob.objects.get(pk=finished.pk).attempts == 0


def test_a_job_with_a_recent_heartbeat_is_left_running(job):
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", started_at=timezone.now() - dt.timedelta(hours=1), heartbeat_at=timezone.now()
    )
    assert jobs.mark_stalled_jobs() == []
    assert ImportJob.objects.get(pk=job.pk).status == "running"
    # Nor may anyone else claim it, though its task might be delivered again.
    assert jobs.run_job(job.pk) is None


def test_a_run_that_lost_its_job_stops_without_writing_over_it(job, small_chunks, monkeypatch):
    """Beat failed the job while its worker was still alive (stuck on a lock for longer than
    the window, say): at its next chunk the worker notices and stops; the job stays failed
    for a person to retry."""

    def beat_gave_up() -> None:
        ImportJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=6))
        assert jobs.mark_stalled_jobs() == [job.pk]

    die_after_chunks(monkeypatch, 1, then=beat_gave_up)
    assert jobs.run_job(job.pk) is None
    job.refresh_from_db()
    assert job.status == "failed" and "2 of 6 rows" in job.message
    assert Member.objects.count() == 3  # the chunk in flight committed; none after it ran


def test_a_job_without_its_file_cannot_be_retried(job):
    ImportJob.objects.filter(pk=job.pk).update(status="failed", file="")
    with pytest.raises(jobs.RetryRefused, match="upload it again"):
        jobs.retry_job(job.pk)

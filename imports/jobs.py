"""Import jobs: every real import is an ImportJob, the source of its consent events.

The admin starts small files at once and hands big ones to Celery. A job is claimed with
a conditional update (only a waiting job, or a running one whose worker stopped moving
it on for ``STALE_AFTER``), so a task delivered twice runs once, and a task redelivered
after its worker died starts the file again: the import is idempotent, so rows already
imported change nothing and nothing is duplicated.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path
from typing import IO

from django.core.files.base import ContentFile, File
from django.db.models import Q
from django.utils import timezone

from cdp import audit
from members.models import Store

from .models import ImportJob
from .readers import FileInfo, FileProblem, sha256_of
from .report import ImportResult
from .service import Progress, import_member_file

logger = logging.getLogger(__name__)
STALE_AFTER = dt.timedelta(minutes=10)


def import_from_command(
    path: Path,
    *,
    store: Store,
    dry_run: bool,
    encoding: str | None,
    progress: Progress | None,
    errors_to: IO[str] | None,
) -> ImportResult:
    """The command's import: a job row records it (except for a dry run, which writes
    nothing); the file stays where it is."""
    if dry_run:
        return import_member_file(
            path, store=store, dry_run=True, encoding=encoding, progress=progress, errors_to=errors_to
        )

    started: list[ImportJob] = []

    def start_job(info: FileInfo, rows: int) -> ImportJob:
        job = ImportJob.objects.create(
            store=store,
            original_name=path.name[:255],
            size=info.size,
            sha256=info.sha256,
            encoding=info.encoding or "xlsx",
            rows_total=rows,
            created_by=audit.current_actor().label,
            status=ImportJob.Status.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
            attempts=1,
        )
        started.append(job)
        return job

    try:
        result = import_member_file(
            path, store=store, encoding=encoding, progress=progress, errors_to=errors_to, start_job=start_job
        )
    except Exception as exc:
        if started:
            ImportJob.objects.filter(pk=started[0].pk).update(
                status=ImportJob.Status.FAILED,
                message=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=timezone.now(),
            )
        raise
    _finish(started[0], result, errors_csv=None)
    return result


def _run(
    job: ImportJob,
    path: Path,
    *,
    encoding: str | None,
    progress: Progress | None = None,
    errors_to: IO[str] | None = None,
) -> ImportResult:
    buffer = io.StringIO()
    try:
        result = import_member_file(
            path, store=job.store, job=job, encoding=encoding or None, progress=progress, errors_to=buffer
        )
    except FileProblem as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, message=str(exc), finished_at=timezone.now()
        )
        audit.record("members.import_failed", job, changes={"reason": str(exc)})
        raise
    except Exception as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    if errors_to is not None:
        errors_to.write(buffer.getvalue())
    _finish(job, result, errors_csv=buffer.getvalue())
    return result


def _finish(job: ImportJob, result: ImportResult, *, errors_csv: str | None) -> None:
    job.refresh_from_db()
    job.status = ImportJob.Status.DONE
    job.finished_at = timezone.now()
    job.sha256 = result.sha256
    job.encoding = result.encoding
    job.rows_total = job.rows_done = result.rows
    for name in ("created", "updated", "merged", "rejected", "consent_events", "seconds"):
        setattr(job, name, getattr(result, name))
    if result.rejected and errors_csv:
        job.errors_file.save(f"import-{job.pk}-rejected.csv", ContentFile(errors_csv.encode("utf-8")), save=False)
    job.save()


def create_job(*, store: Store, upload: File, encoding: str = "") -> ImportJob:
    """Keep an uploaded file as a waiting job (the admin previews it, then confirms)."""
    job = ImportJob(
        store=store,
        original_name=Path(upload.name or "upload").name[:255],
        size=upload.size or 0,
        encoding=encoding,
        created_by=audit.current_actor().label,
    )
    job.file.save(Path(upload.name or "upload.csv").name, upload, save=False)
    job.sha256 = sha256_of(Path(job.file.path))
    job.save()
    audit.record("members.import_uploaded", job, changes={"store": store.code, "file": job.original_name})
    return job


def preview(job: ImportJob) -> ImportResult:
    """A dry run of the job's file: counts and rejected rows, nothing written."""
    return import_member_file(Path(job.file.path), store=job.store, dry_run=True, encoding=job.encoding or None)


def claim(job_id: int) -> ImportJob | None:
    now = timezone.now()
    claimed = ImportJob.objects.filter(
        Q(status=ImportJob.Status.PENDING) | Q(status=ImportJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER),
        pk=job_id,
    ).update(status=ImportJob.Status.RUNNING, started_at=now, heartbeat_at=now, message="")
    if not claimed:
        return None
    job = ImportJob.objects.select_related("store__brand").get(pk=job_id)
    ImportJob.objects.filter(pk=job_id).update(attempts=job.attempts + 1)
    job.attempts += 1
    return job


def run_job(job_id: int) -> ImportResult | None:
    """Run a waiting job (the Celery task and the admin's small uploads call this)."""
    job = claim(job_id)
    if job is None:
        logger.info("import job %s is not waiting (already running or finished)", job_id)
        return None
    if job.attempts > 1:
        logger.warning(
            "import job %s restarts (attempt %s): rows already imported change nothing", job_id, job.attempts
        )
    with audit.acting_as(audit.Actor(type="system", label=f"import job {job.pk} ({job.created_by})")):
        try:
            return _run(job, Path(job.file.path), encoding=job.encoding or None)
        except FileProblem:
            return None


def discard(job: ImportJob, *, reason: str) -> None:
    """An upload that cannot be imported: drop the file, keep the job row as the record."""
    if job.file:
        job.file.delete(save=False)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED, message=reason[:2000], finished_at=timezone.now(), file=""
    )
    audit.record("members.import_failed", job, changes={"reason": reason})

"""Import jobs: every real import is an ImportJob, the source of its consent events.

The admin starts small files at once and hands big ones to Celery. A job is claimed with
a conditional update (only a waiting job, or a running one whose heartbeat is older than
``JOBS_STALE_AFTER_SECONDS``: its worker died), so a task delivered twice runs once, and a
task redelivered after its worker died starts the file again: the import is idempotent, so
rows already imported change nothing and nothing is duplicated.

While a job runs its worker keeps ``heartbeat_at`` moving (``cdp.heartbeat``, and after
every chunk). Beat marks a running job without a heartbeat for that long failed, saying
so (``mark_stalled_jobs``); a person retries it from the admin (``retry_job``), which
queues it again through the outbox. Every write to a running job is fenced by its status
and attempt, so a run that lost its job stops instead of overwriting the newer state.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue_on_commit
from cdp.heartbeat import Heartbeat, fail_stalled, last_seen_text, stale_before
from members.models import Store

from . import chunks
from .models import ImportJob
from .readers import FileInfo, FileProblem, sha256_of
from .report import ImportResult
from .service import JobLost, Progress, import_member_file

logger = logging.getLogger(__name__)


class RetryRefused(Exception):
    """A job that cannot be retried, said plainly."""


def _ours(job: ImportJob) -> Q:
    """The job as this run claimed it: running, in this attempt (the fence)."""
    return Q(pk=job.pk, status=ImportJob.Status.RUNNING, attempts=job.attempts)


def _beating(job: ImportJob) -> Heartbeat:
    return Heartbeat(ImportJob.objects.filter(_ours(job)))


def import_from_command(
    path: Path,
    *,
    store: Store,
    dry_run: bool,
    encoding: str | None,
    progress: Progress | None,
    errors_to: IO[str] | None,
    consent_at: dt.datetime | None = None,
) -> ImportResult:
    """The command's import: a job row records it (except for a dry run, which writes
    nothing); the file stays where it is. ``consent_at``: when the file's consent answers
    were given (``imports.consent_time``), kept on the job."""
    if dry_run:
        return import_member_file(
            path, store=store, dry_run=True, encoding=encoding, progress=progress, errors_to=errors_to,
            consent_at=consent_at,
        )  # fmt: skip

    started: list[ImportJob] = []
    heartbeat = ExitStack()

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
            consent_at=consent_at,
        )
        started.append(job)
        heartbeat.enter_context(_beating(job))
        return job

    with heartbeat:
        try:
            result = import_member_file(
                path, store=store, encoding=encoding, progress=progress, errors_to=errors_to, start_job=start_job,
                consent_at=consent_at,
            )  # fmt: skip
        except Exception as exc:
            if started:
                ImportJob.objects.filter(_ours(started[0])).update(
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
    buffer = io.StringIO()  # the rejected rows as the job keeps them (reasons translated when read)
    try:
        with _beating(job):
            result = import_member_file(
                path, store=job.store, job=job, encoding=encoding or None, progress=progress, errors_to=errors_to,
                errors_stored_to=buffer,
            )  # fmt: skip
    except JobLost:
        raise
    except FileProblem as exc:
        ImportJob.objects.filter(_ours(job)).update(
            status=ImportJob.Status.FAILED, message=str(exc), finished_at=timezone.now()
        )
        audit.record("members.import_failed", job, changes={"reason": str(exc)})
        raise
    except Exception as exc:
        ImportJob.objects.filter(_ours(job)).update(
            status=ImportJob.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    _finish(job, result, errors_csv=buffer.getvalue())
    return result


def _finish(job: ImportJob, result: ImportResult, *, errors_csv: str | None) -> None:
    """Done, with the counts of every attempt (see ``service._on_committed``); fenced like
    the heartbeat, so a run that lost its job does not report over it."""
    errors_file = ""
    if result.rejected and errors_csv:
        errors_file = job.errors_file.storage.save(
            job.errors_file.field.generate_filename(job, f"import-{job.pk}-rejected.csv"),
            ContentFile(errors_csv.encode("utf-8")),
        )
    done = ImportJob.objects.filter(_ours(job)).update(
        status=ImportJob.Status.DONE,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        sha256=result.sha256,
        encoding=result.encoding,
        rows_total=result.rows,
        rows_done=result.rows,
        created=job.created + result.created,
        updated=job.updated + result.updated,
        merged=job.merged + result.merged,
        consent_events=job.consent_events + result.consent_events,
        rejected=result.rejected,
        seconds=result.seconds,
        errors_file=errors_file,
    )
    if not done:
        if errors_file:
            job.errors_file.storage.delete(errors_file)
        raise JobLost(f"import job {job.pk} attempt {job.attempts} is no longer running")


def create_job(*, store: Store, upload: File, encoding: str = "", consent_at: dt.datetime | None = None) -> ImportJob:
    """Keep an uploaded file as a waiting job (the admin previews it, then confirms).
    ``consent_at``: when the file's consent answers were given, as the uploader states."""
    job = ImportJob(
        store=store,
        original_name=Path(upload.name or "upload").name[:255],
        size=upload.size or 0,
        encoding=encoding,
        created_by=audit.current_actor().label,
        consent_at=consent_at,
    )
    job.file.save(Path(upload.name or "upload.csv").name, upload, save=False)
    job.sha256 = sha256_of(Path(job.file.path))
    job.save()
    audit.record(
        "members.import_uploaded",
        job,
        changes={"store": store.code, "file": job.original_name,
                 **({"consent_at": consent_at.isoformat()} if consent_at else {})},
    )  # fmt: skip
    return job


def preview(job: ImportJob) -> ImportResult:
    """A dry run of the job's file: counts and rejected rows, nothing written."""
    return import_member_file(
        Path(job.file.path), store=job.store, dry_run=True, encoding=job.encoding or None, consent_at=job.consent_at
    )


def claim(job_id: int) -> ImportJob | None:
    """Take a waiting job, or a running one whose worker stopped (heartbeat older than
    ``JOBS_STALE_AFTER_SECONDS``, as a redelivered task finds it). A failed job runs again
    only when a person retries it (``retry_job`` makes it wait again). The counts of earlier
    attempts stay as the base of this one's; rejected rows are found again."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(
        Q(status=ImportJob.Status.PENDING) | Q(status=ImportJob.Status.RUNNING, heartbeat_at__lt=stale_before(now)),
        pk=job_id,
    ).update(
        status=ImportJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
        message="",
        rows_done=0,
        rejected=0,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return ImportJob.objects.select_related("store__brand").get(pk=job_id)


def run_job(job_id: int, *, split: bool = False) -> ImportResult | None:
    """Run a waiting job (the Celery task and the admin's small uploads call this).
    ``split`` (the task): a file of more than ``IMPORT_SPLIT_ROWS`` rows runs as chunk
    tasks that any number of workers share (``imports.chunks``); None then, the chunks
    finish the job."""
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
            if split and chunks.split(job):
                return None
            return _run(job, Path(job.file.path), encoding=job.encoding or None)
        except FileProblem:
            return None
        except JobLost:
            logger.warning("import job %s attempt %s stopped: the job was failed or claimed meanwhile", job_id,
                           job.attempts)  # fmt: skip
            return None


# --- Stuck work -----------------------------------------------------------------------


def _stalled_reason(last_seen: Coalesce) -> Concat:
    """The reason a person reads, built in SQL so that marking is one statement: when the
    job was last heard from (local time, to the second) and how far it got."""
    return Concat(
        Value("The worker stopped without finishing; last progress at "),
        last_seen_text(last_seen),
        Value(f" ({settings.TIME_ZONE}), "),
        Cast(F("rows_done"), CharField()),
        Value(" of "),
        Cast(F("rows_total"), CharField()),
        Value(" rows processed. Retry it from the admin: rows already imported are not imported twice."),
        output_field=CharField(),
    )


@transaction.atomic
def mark_stalled_jobs(*, now: dt.datetime | None = None) -> list[int]:
    """Beat's sweep: every running job whose worker has not moved its heartbeat for
    ``JOBS_STALE_AFTER_SECONDS`` is failed with a reason a person understands
    (``cdp.heartbeat.fail_stalled``: one SELECT, one UPDATE), then an audit row per job
    marked, usually none. Returns the ids marked."""
    now = now or timezone.now()
    last_seen = Coalesce("heartbeat_at", "started_at", "created_at")
    ids = fail_stalled(
        ImportJob.objects.filter(status=ImportJob.Status.RUNNING), last_seen=last_seen,
        failed=ImportJob.Status.FAILED, reason_field="message", reason=_stalled_reason(last_seen), now=now,
    )  # fmt: skip
    if not ids:
        return []
    for job in ImportJob.objects.filter(pk__in=ids).select_related("store"):
        audit.record("members.import_stalled", job, changes={"reason": job.message, "attempts": job.attempts})
    logger.warning("import jobs marked failed, their workers stopped: %s", ids)
    return ids


@transaction.atomic
def retry_job(job_id: int) -> ImportJob:
    """Queue a failed job again (through the outbox, after commit). It runs the whole file
    once more: what the earlier attempts imported changes nothing and is not counted
    twice. Raises ``RetryRefused`` for a job that is not failed or has no file."""
    job = ImportJob.objects.select_for_update().select_related("store").filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.FAILED:
        raise RetryRefused("Only a failed import can be retried.")
    if not job.file:
        raise RetryRefused("The file of this import is no longer kept: upload it again.")
    reason = job.message
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.PENDING, message="", finished_at=None)
    audit.record("members.import_retried", job, changes={"reason": reason, "attempts": job.attempts})
    enqueue_on_commit("imports.tasks.run_import_job", job.pk)
    job.refresh_from_db()
    return job


def discard(job: ImportJob, *, reason: str) -> None:
    """An upload that cannot be imported: drop the file, keep the job row as the record."""
    if job.file:
        job.file.delete(save=False)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.FAILED, message=reason[:2000], finished_at=timezone.now(), file=""
    )
    audit.record("members.import_failed", job, changes={"reason": reason})

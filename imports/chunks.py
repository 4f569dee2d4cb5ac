"""A big member file as chunk tasks that any number of workers share (docs/operations.md,
"Queues and workers").

``run_import_job`` claims the job as for any file (``jobs.claim``). A file of more than
``IMPORT_SPLIT_ROWS`` rows is then *split* (``split``): read and checked once, as
``import_member_file``'s first pass does (encoding, header, row count, the member ids on
more than one row, the consent time), and cut into chunks of ``IMPORT_CHUNK_ROWS`` data
rows, the COPY path's transaction. The first ``IMPORT_CHUNKS_AHEAD`` chunk tasks go to the
``imports`` queue; each chunk, as it commits, queues the one that many after it, so a file
never has more chunks queued than that and two big files share the workers.

A chunk task (``run_chunk``) reads and validates its rows, on any worker, side by side with
the other chunks; then it waits for its *turn*: the job's ``rows_done`` reaching its first
row, i.e. every chunk before it committed. Its rows are written in one transaction that
also adds its counts to the job's and moves ``rows_done`` past it, by an UPDATE fenced by
status, attempt and ``rows_done`` whose row count is checked. So:

* chunks commit in file order, each against what the chunks before it wrote, through the
  same code as ``import_member_file`` (``copy_path.process_rows``, ``row_by_row``): a
  later row of a person finds what an earlier chunk created, the later row wins, and the
  result (members, identities, memberships, consent events and their chains, counts,
  rejected rows) is the one of a single worker reading the file;
* a chunk delivered twice, or redelivered after its worker died, finds ``rows_done`` past
  its rows and does nothing; one whose worker died before the commit left nothing behind
  and runs again. A waiting chunk does not beat: when the chunk before it lost its worker,
  beat fails the job after ``JOBS_STALE_AFTER_SECONDS`` (``jobs.mark_stalled_jobs``) and
  the waiting chunks stop; a retry from the admin runs the file again (a new attempt, its
  own chunks), changing nothing that was imported. A chunk that waited a heartbeat
  interval goes back to the queue instead of holding its worker;
* the chunk that commits the last rows finishes the job: rejected rows file, status, the
  audit row ``members.imported``.

Each chunk's rejected rows wait in a file of their own under ``imports/chunks/`` until the
last chunk joins them into the job's; the files go with the job's (``retention``).

In-process (no broker: ``make demo``, the test suite) the chunks run one after the other in
the process that split the file, through the same ``run_chunk``.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cdp import audit, broker
from cdp.enqueue import enqueue, enqueue_on_commit
from cdp.heartbeat import Heartbeat, interval

from .consent_time import check_consent_time
from .context import ImportContext
from .models import ImportJob
from .readers import FileProblem, inspect
from .report import COPY, ROW_BY_ROW, STORED_HEADER, ErrorLog, ImportResult
from .rows import RowValidator
from .service import (
    ROW_BY_ROW_CHUNK_ROWS,
    JobLost,
    Scan,
    chunk_of,
    copy_path_available,
    fewer_collections,
    header_of,
    observed_at_of,
)

logger = logging.getLogger(__name__)

TASK = "imports.tasks.import_chunk"
CHUNK_DIR = "imports/chunks"


def _ours(job_id: int, attempt: int):
    return ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING, attempts=attempt)


def _folder(job_id: int, attempt: int) -> str:
    return f"{CHUNK_DIR}/{job_id}-{attempt}"


def _repeated_name(job_id: int, attempt: int) -> str:
    return f"{_folder(job_id, attempt)}/repeated.json"


def _rejected_name(job_id: int, attempt: int, index: int) -> str:
    return f"{_folder(job_id, attempt)}/rejected-{index:06d}.csv"


def _save(name: str, content: bytes) -> None:
    """Write ``name`` exactly (a chunk run again replaces what its earlier run wrote)."""
    default_storage.delete(name)
    default_storage.save(name, ContentFile(content))


def split(job: ImportJob) -> bool:
    """Read and check the claimed job's file once; if it has more than ``IMPORT_SPLIT_ROWS``
    rows, queue its first chunks (in process: run them all) and return True. False: a
    file for one task (``jobs._run``). Raises ``FileProblem`` (nothing written) as the
    import would, the job failed with the reason."""
    try:
        return _split(job)
    except JobLost:
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, FileProblem) else f"{type(exc).__name__}: {exc}"
        failed = _ours(job.pk, job.attempts).update(
            status=ImportJob.Status.FAILED, message=reason[:2000], finished_at=timezone.now()
        )
        if failed and isinstance(exc, FileProblem):
            audit.record("members.import_failed", job, changes={"reason": reason})
        raise


def _split(job: ImportJob) -> bool:
    from .service import scan

    info = inspect(Path(job.file.path), encoding=job.encoding or None)
    found = scan(info)
    if found.rows <= settings.IMPORT_SPLIT_ROWS:
        return False
    _delete_chunk_files(job.pk)  # of earlier attempts: they stopped
    check_consent_time(store=job.store, header=found.header, consent_at=job.consent_at, now=timezone.now())
    observed_at_of(job.store, info.sha256, job=job)  # kept on the job: every chunk uses it
    size = settings.IMPORT_CHUNK_ROWS
    chunks = -(-found.rows // size)
    repeated = {member_id: found.last_row[member_id] for member_id in found.repeated}
    _save(_repeated_name(job.pk, job.attempts), json.dumps(repeated, ensure_ascii=False).encode("utf-8"))
    eager = broker.is_eager()
    with transaction.atomic():
        moved = _ours(job.pk, job.attempts).update(
            # The encoding found, so that chunks do not detect it again (XLSX has none).
            rows_total=found.rows,
            sha256=info.sha256,
            encoding=info.encoding or job.encoding,
            heartbeat_at=timezone.now(),
        )
        if not moved:
            raise JobLost(f"import job {job.pk} attempt {job.attempts} is no longer running")
        if not eager:
            for index in range(min(chunks, settings.IMPORT_CHUNKS_AHEAD)):
                enqueue_on_commit(TASK, job.pk, job.attempts, index, size)
    logger.info("import job %s: %d rows in %d chunk tasks of %d rows", job.pk, found.rows, chunks, size)
    if eager:
        for index in range(chunks):
            run_chunk(job.pk, job.attempts, index, size, queue_next=False)
    return True


def run_chunk(job_id: int, attempt: int, index: int, size: int, *, queue_next: bool = True) -> None:
    """Import chunk ``index`` (rows ``index * size`` to ``(index + 1) * size`` of the data
    rows) of a split job, in its turn; nothing if the job is no longer this attempt's or
    the chunk committed already. ``queue_next``: queue the chunk ``IMPORT_CHUNKS_AHEAD``
    after this one with the commit (the tasks; in process the caller runs them all)."""
    job = _ours(job_id, attempt).select_related("store__brand").first()
    if job is None:
        logger.info("import job %s attempt %s is not running: chunk %s has nothing to do", job_id, attempt, index)
        return
    first = index * size
    if job.rows_done > first:
        _finish_if_done(job)  # a redelivered last chunk whose worker died before finishing
        return
    with audit.acting_as(audit.Actor(type="system", label=f"import job {job.pk} ({job.created_by})")):
        try:
            _run_chunk(job, index, first, size, queue_next=queue_next)
        except JobLost:
            logger.warning("import job %s attempt %s chunk %s stopped: the job was failed or claimed meanwhile",
                           job_id, attempt, index)  # fmt: skip
        except Exception as exc:
            failed = _ours(job_id, attempt).update(
                status=ImportJob.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=timezone.now(),
            )  # fmt: skip
            if failed:  # the first chunk to fail says why; the others find the job failed
                audit.record("members.import_failed", job, changes={"reason": str(exc)[:2000], "chunk": index})
                _delete_chunk_files(job.pk, attempt)
            raise


@fewer_collections()  # as an import in one go: most of a chunk's objects die young
def _run_chunk(job: ImportJob, index: int, first: int, size: int, *, queue_next: bool) -> None:
    info = inspect(Path(job.file.path), encoding=job.encoding or None)
    with default_storage.open(_repeated_name(job.pk, job.attempts), "rb") as handle:
        repeated = json.loads(handle.read().decode("utf-8"))
    found = Scan(header=header_of(info), rows=job.rows_total, last_row=repeated)
    validator = RowValidator(store=job.store, header=found.header, observed_at=job.observed_at,
                             strict_width=info.kind == "csv", consent_at=job.consent_at)  # fmt: skip
    # Read and validate before the turn: this is what workers do side by side.
    rows, refused, done = chunk_of(info, found, validator, first=first, size=size)
    if not _wait_for_turn(job, index, size):
        return
    result = ImportResult()
    errors = ErrorLog(result)
    ctx = ImportContext(store=job.store, sha256=job.sha256, source_ref=job.source_ref, observed_at=job.observed_at,
                        result=result, errors=errors, consent_at=job.consent_at)  # fmt: skip
    try:
        with Heartbeat(_ours(job.pk, job.attempts)), transaction.atomic():
            for refusal in refused:
                errors.reject_all(*refusal)
            _write(ctx, rows)
            if result.rejected:
                stored = io.StringIO()
                errors.write_stored(stored)
                _save(_rejected_name(job.pk, job.attempts, index), _without_header(stored.getvalue()))
            moved = _ours(job.pk, job.attempts).filter(rows_done=first).update(
                rows_done=done, heartbeat_at=timezone.now(), created=F("created") + result.created,
                updated=F("updated") + result.updated, merged=F("merged") + result.merged,
                rejected=F("rejected") + result.rejected, consent_events=F("consent_events") + result.consent_events,
            )  # fmt: skip
            if not moved:
                raise JobLost(f"import job {job.pk} attempt {job.attempts} chunk {index} was done by another run")
            following = index + settings.IMPORT_CHUNKS_AHEAD
            if queue_next and following * size < job.rows_total:
                enqueue_on_commit(TASK, job.pk, job.attempts, following, size)
    finally:
        errors.close()
    if done >= job.rows_total:
        job.refresh_from_db()
        _finish_if_done(job)


def _without_header(csv_text: str) -> bytes:
    return csv_text.split("\n", 1)[1].encode("utf-8") if "\n" in csv_text else b""


def _write(ctx: ImportContext, rows: list) -> None:
    """The chunk's valid rows through the path ``import_member_file`` takes, inside the
    chunk's transaction."""
    if copy_path_available():
        from .copy_path import process_rows

        ctx.result.path = COPY
        process_rows(ctx, rows)
        return
    from .row_by_row import process_rows as row_by_row

    ctx.result.path = ROW_BY_ROW
    for start in range(0, len(rows), ROW_BY_ROW_CHUNK_ROWS):
        row_by_row(ctx, rows[start : start + ROW_BY_ROW_CHUNK_ROWS])


def _wait_for_turn(job: ImportJob, index: int, size: int) -> bool:
    """Wait until every chunk before ours committed (``rows_done`` is our first row).
    False if ours committed already, the job is no longer ours, or we waited a heartbeat
    interval: then the chunk goes back to the queue, behind the one it waits for (a
    redelivered chunk may be queued behind us), and the worker takes other work."""
    first = index * size
    deadline = time.monotonic() + interval()
    pause = 0.05
    while True:
        rows_done = _ours(job.pk, job.attempts).values_list("rows_done", flat=True).first()
        if rows_done is None or rows_done > first:
            return False
        if rows_done == first:
            return True
        if time.monotonic() >= deadline:
            logger.info("import job %s: chunk at row %s waits for the one before it; queued again", job.pk, first)
            enqueue(TASK, job.pk, job.attempts, index, size, countdown=1)
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _finish_if_done(job: ImportJob) -> None:
    """Every chunk committed: join the rejected rows into the job's file, then mark the job
    done (fenced: once, by this attempt) with the audit row the import writes."""
    if job.status != ImportJob.Status.RUNNING or job.rows_done < job.rows_total:
        return
    errors_file = ""
    if job.rejected:
        errors_file = job.errors_file.storage.save(
            job.errors_file.field.generate_filename(job, f"import-{job.pk}-rejected.csv"),
            ContentFile(_joined_rejected(job)),
        )
    now = timezone.now()
    seconds = (now - job.started_at).total_seconds() if job.started_at else 0.0
    with transaction.atomic():
        done = (
            _ours(job.pk, job.attempts)
            .filter(rows_done=job.rows_total)
            .update(
                status=ImportJob.Status.DONE,
                finished_at=now,
                heartbeat_at=now,
                seconds=seconds,
                errors_file=errors_file,
            )
        )
        if done:
            result = ImportResult(rows=job.rows_total, created=job.created, updated=job.updated, merged=job.merged,
                                  rejected=job.rejected, consent_events=job.consent_events, seconds=seconds)  # fmt: skip
            audit.record(
                "members.imported",
                job,
                changes={"store": job.store.code, "file_sha256": job.sha256, **result.as_json(),
                         "path": COPY if copy_path_available() else ROW_BY_ROW, "chunks": True},
            )  # fmt: skip
    if not done:
        if errors_file:
            job.errors_file.storage.delete(errors_file)
        return
    _delete_chunk_files(job.pk, job.attempts)


def _joined_rejected(job: ImportJob) -> bytes:
    from cdp.csvutil import csv_lines

    parts = [b"".join(chunk.encode("utf-8") for chunk in csv_lines(STORED_HEADER, []))]
    try:
        _folders, names = default_storage.listdir(_folder(job.pk, job.attempts))
    except FileNotFoundError:
        names = []
    for name in sorted(n for n in names if n.startswith("rejected-")):
        with default_storage.open(f"{_folder(job.pk, job.attempts)}/{name}", "rb") as handle:
            parts.append(handle.read())
    return b"".join(parts)


def _delete_chunk_files(job_id: int, attempt: int | None = None) -> None:
    """The split's files of the job (one attempt's, or all): they hold member ids and
    rejected rows of the upload."""
    try:
        folders, _files = default_storage.listdir(CHUNK_DIR)
    except FileNotFoundError:
        return
    for folder in folders:
        owner, _, tried = folder.partition("-")
        if owner != str(job_id) or (attempt is not None and tried != str(attempt)):
            continue
        _subfolders, names = default_storage.listdir(f"{CHUNK_DIR}/{folder}")
        for name in names:
            default_storage.delete(f"{CHUNK_DIR}/{folder}/{name}")
        default_storage.delete(f"{CHUNK_DIR}/{folder}")


def delete_files(job_id: int) -> None:
    """Every split file of the job (an erasure, retention, a retry's new attempt)."""
    _delete_chunk_files(job_id)

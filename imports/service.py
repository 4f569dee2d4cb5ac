"""``import_member_file``: the one service behind the command, the admin and the job.

Two passes over the file. The first reads it whole without writing anything: encoding,
CSV structure, header, row count, and which row is the last one of each member id (the
later row wins). A file that cannot be read fails here and nothing is written. The
second pass validates each row and writes chunks, each chunk one transaction: on
PostgreSQL set-based (the COPY path, ``copy_path``), elsewhere one row after the other
(the row-by-row path, ``row_by_row``).
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from cdp import audit
from members.models import Store

from .columns import Header, map_header
from .consent_time import check_consent_time
from .context import ImportContext
from .models import ImportJob
from .readers import FileInfo, FileProblem, inspect, read_rows
from .reasons import reason
from .report import COPY, ROW_BY_ROW, ErrorLog, ImportResult, Problem
from .rows import ParsedRow, RowProblem, RowValidator, unquote

Progress = Callable[[int, int], None]
Refusal = tuple[int, list[Problem]]  # row, its problems: (column, reason, value) each
ROW_BY_ROW_CHUNK_ROWS = 500


class _DryRun(Exception):
    pass


@dataclass
class Scan:
    header: Header
    rows: int
    last_row: dict[str, int]
    repeated: set[str] = field(default_factory=set)  # member ids on more than one row


def _blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()  # one C call per row, not a strip per cell


def _header_row(rows: Iterator[list[str]]) -> list[str] | None:
    """The first row that is not blank (the header), or None: ``rows`` then holds the data."""
    return next((cells for cells in rows if not _blank(cells)), None)


def _numbered(info: FileInfo) -> Iterator[tuple[int, list[str]]]:
    """Data rows with their spreadsheet row number (header = 1); blank rows skipped."""
    rows = read_rows(info)
    _header_row(rows)
    yield from _numbered_from(rows)


def _ends_with_newline(info: FileInfo) -> bool:
    with info.path.open("rb") as handle:
        handle.seek(max(info.size - 2, 0))
        tail = handle.read()
    return tail.endswith((b"\n", b"\r", b"\n\x00")) or (info.encoding == "utf-16" and tail in (b"\x00\n", b"\x00\r"))


def scan(info: FileInfo) -> Scan:
    """The first pass: everything that makes a file unreadable, before any write."""
    rows = read_rows(info)
    first = _header_row(rows)
    if first is None:
        raise FileProblem("the file is empty")
    header = map_header(first)
    if "member_id" not in header.columns:
        raise FileProblem(
            "no member id column: the header needs member_id (or 会员ID, 会员编号, 会员卡号); it has "
            + ", ".join(repr(n) for n in header.names[:12])
        )
    if header.duplicates:
        raise FileProblem(f"the header names these columns twice: {', '.join(header.duplicates)}")
    member_index = header.columns["member_id"]
    last_row: dict[str, int] = {}
    repeated: set[str] = set()
    count = 0
    width = 0
    for number, cells in _numbered_from(rows):
        count += 1
        width = len(cells)
        if member_index < len(cells):
            member_id = unquote(cells[member_index].strip())
            if member_id:
                if member_id in last_row:
                    repeated.add(member_id)
                last_row[member_id] = number
    if count == 0:
        raise FileProblem("the file has a header but no rows")
    if info.kind == "csv" and width < len(header.names) and not _ends_with_newline(info):
        raise FileProblem("the file is truncated: its last line ends early")
    return Scan(header=header, rows=count, last_row=last_row, repeated=repeated)


def header_of(info: FileInfo) -> Header:
    """The header of a file ``scan`` found readable (chunk tasks read it again)."""
    first = _header_row(read_rows(info))
    if first is None:
        raise FileProblem("the file is empty")
    return map_header(first)


def _numbered_from(rows: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    for number, cells in enumerate(rows, start=2):
        if not _blank(cells):
            yield number, cells


def _chunks(
    info: FileInfo, found: Scan, validator: RowValidator, size: int
) -> Iterator[tuple[list[ParsedRow], list[Refusal], int]]:
    """The second pass: (valid rows, refused rows, rows read so far) per chunk of
    ``size`` rows, refused ones counted too so that a file of bad rows streams. A chunk may
    hold refusals only."""
    chunk: list[ParsedRow] = []
    refused: list[Refusal] = []
    done = 0
    for number, cells in _numbered(info):
        done += 1
        _check(validator, found, number, cells, chunk, refused)
        if len(chunk) + len(refused) >= size:
            yield chunk, refused, done
            chunk, refused = [], []
    if chunk or refused:
        yield chunk, refused, done


def chunk_of(
    info: FileInfo, found: Scan, validator: RowValidator, *, first: int, size: int
) -> tuple[list[ParsedRow], list[Refusal], int]:
    """One chunk of the second pass as ``_chunks`` yields it: the ``size`` data rows after
    the first ``first`` (those are read, not validated). A chunk task's rows."""
    chunk: list[ParsedRow] = []
    refused: list[Refusal] = []
    done = first
    for number, cells in itertools.islice(_numbered(info), first, first + size):
        done += 1
        _check(validator, found, number, cells, chunk, refused)
    return chunk, refused, done


def _check(
    validator: RowValidator, found: Scan, number: int, cells: list[str], chunk: list[ParsedRow], refused: list[Refusal]
) -> None:
    """A data row validated into ``chunk``, or refused with its problems into ``refused``."""
    try:
        member_id = validator.member_id_of(cells)
        last = found.last_row.get(member_id)
        if last is not None and last != number:
            raise RowProblem(
                validator.name_of["member_id"],
                reason(gettext_noop("member id %(member_id)s appears again in row %(row)s; the later row wins"),
                       member_id=repr(member_id), row=last),
                member_id,
            )  # fmt: skip
        chunk.append(validator.parse(number, cells))
    except RowProblem as exc:
        refused.append((number, exc.listed()))


@contextmanager
def fewer_collections() -> Iterator[None]:
    """An import allocates tens of millions of objects that reference counting frees and
    hardly any that form cycles, yet the cyclic collector's defaults run a pass every 700
    allocations and, now and then, a full pass over everything alive, Django's own
    modules included: a large share of the import's Python CPU (bench/README.md, "Rows
    8–9: the garbage collector"). Objects alive before the import are
    frozen out of the passes and passes come less often; both are undone afterwards. If
    the process had frozen objects already (a server freezing before it forks, or another
    import in a thread), they stay frozen with ours: ``gc.unfreeze`` cannot tell them
    apart, and objects left frozen are still freed by reference counting. The thresholds
    are process-wide: two imports in threads may end each other's tuning early, which
    costs speed, not correctness."""
    thresholds = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen_before:
            gc.unfreeze()


def copy_path_available() -> bool:
    """The COPY path needs PostgreSQL (COPY, arrays, row locks)."""
    return connection.vendor == "postgresql"


@fewer_collections()
def import_member_file(
    path: Path | str,
    *,
    store: Store,
    dry_run: bool = False,
    encoding: str | None = None,
    job: ImportJob | None = None,
    progress: Progress | None = None,
    use_copy: bool | None = None,
    errors_to: IO[str] | None = None,
    start_job: Callable[[FileInfo, int], ImportJob] | None = None,
    pipelined: bool | None = None,
    consent_at: dt.datetime | None = None,
    errors_stored_to: IO[str] | None = None,
) -> ImportResult:
    """Import one member file into ``store``; raise ``FileProblem`` if it cannot be read
    (then nothing was written). Rows with problems are rejected and reported; the rest go
    in. Importing the same file again changes nothing. ``start_job`` makes the job row
    once the file proved readable (the command's imports). ``use_copy``: the COPY path
    (by default wherever it is available) or the row-by-row path. ``pipelined``: two
    chunks in flight on two connections (``pipeline``); by default on the COPY path
    unless this is a dry run or runs inside a transaction. ``consent_at``: when the file's
    consent answers were given, for rows without a consent_at of their own (by default
    the job's); a file with answers and no time is refused (``ConsentTimeProblem``, a
    ``FileProblem``) before anything is written. ``errors_to`` gets the rejected rows
    in the active language, ``errors_stored_to`` as a job keeps them."""
    started = time.monotonic()
    info = inspect(Path(path), encoding=encoding)
    found = scan(info)
    if consent_at is None and job is not None:
        consent_at = job.consent_at
    check_consent_time(store=store, header=found.header, consent_at=consent_at, now=timezone.now())
    if start_job is not None and not dry_run:
        job = start_job(info, found.rows)
    result = ImportResult(rows=found.rows, sha256=info.sha256, encoding=info.encoding or "xlsx", dry_run=dry_run)
    use_copy = copy_path_available() if use_copy is None else use_copy
    result.path = COPY if use_copy else ROW_BY_ROW
    errors = ErrorLog(result)
    observed_at = observed_at_of(store, info.sha256, job=None if dry_run else job)
    ctx = ImportContext(
        store=store,
        sha256=info.sha256,
        source_ref=job.source_ref if job else "import:command-line",
        observed_at=observed_at,
        result=result,
        errors=errors,
        consent_at=consent_at,
    )
    validator = RowValidator(store=store, header=found.header, observed_at=observed_at,
                             strict_width=info.kind == "csv", consent_at=consent_at)  # fmt: skip
    process_rows, chunk_size = _writer(use_copy)
    if pipelined is None:
        pipelined = not connection.in_atomic_block
    pipelined = pipelined and use_copy and not dry_run
    done = 0  # rows read so far (the chunk loop below sets it)
    chunk_done = _on_committed(None if dry_run else job, result, progress, found.rows)
    pipeline = None
    if pipelined:
        from .pipeline import Pipeline

        pipeline = Pipeline(ctx, on_committed=chunk_done)

    def flush(chunk: list[ParsedRow], refused: list[Refusal]) -> None:
        # Rows refused by validation are reported with their chunk, before its own refusals:
        # the error file lists rows in the order one chunk after the other would.
        if pipeline is not None:
            pipeline.submit(chunk, refused, done)
            return
        for refusal in refused:
            errors.reject_all(*refusal)
        process_rows(ctx, chunk)
        chunk_done(done)

    try:
        with transaction.atomic() if dry_run else nullcontext():
            for chunk, refused, done in _chunks(info, found, validator, chunk_size):  # noqa: B007 - flush reads ``done``
                flush(chunk, refused)
            if pipeline is not None:
                pipeline, running = None, pipeline
                running.close()
            if progress:
                progress(done, found.rows)
            result.seconds = time.monotonic() - started
            if dry_run:
                raise _DryRun
            audit.record(
                "members.imported",
                job or store,
                changes={"store": store.code, "file_sha256": info.sha256, **result.as_json(), "path": result.path},
            )
    except _DryRun:
        pass
    finally:
        if pipeline is not None:  # reading failed: let the chunks already handed over finish
            pipeline.close(raise_error=False)
    if errors_to is not None:
        errors.write_csv(errors_to)
    if errors_stored_to is not None:
        errors.write_stored(errors_stored_to)
    errors.close()
    result.seconds = time.monotonic() - started
    return result


def observed_at_of(store: Store, sha256: str, *, job: ImportJob | None) -> dt.datetime:
    """When the rows of this file were observed, for survivorship (``members.survivorship``):
    the time of its first import into this store, kept on its job, else now. The same
    file imported again is the same observation, not a newer one: were it newer, each of
    its rows would overwrite again what a later row of the same person wrote (two rows of
    one person with different names), and an identical file would count updates. A job
    keeps the time it used (``ImportJob.observed_at``), so a retried job keeps it too."""
    if job is not None and job.observed_at is not None:
        return job.observed_at
    earlier = (
        ImportJob.objects.filter(store=store, sha256=sha256, observed_at__isnull=False)
        .order_by("observed_at")
        .values_list("observed_at", flat=True)
        .first()
    )
    observed_at = earlier or timezone.now()
    if job is not None:
        ImportJob.objects.filter(pk=job.pk).update(observed_at=observed_at)
        job.observed_at = observed_at
    return observed_at


def _writer(use_copy: bool) -> tuple[Callable[[ImportContext, list[ParsedRow]], None], int]:
    """What writes a chunk on the chosen path, and how many rows a chunk has."""
    if use_copy:
        from .copy_path import process_rows

        return process_rows, settings.IMPORT_CHUNK_ROWS
    from .row_by_row import process_rows as row_by_row

    return row_by_row, ROW_BY_ROW_CHUNK_ROWS


class JobLost(Exception):
    """The job was marked failed (no heartbeat for ``JOBS_STALE_AFTER_SECONDS``) or claimed
    by another run while this one worked: stop at the chunk boundary and leave the job to
    whoever holds it now. What this run committed stays; the import is idempotent."""


def _on_committed(
    job: ImportJob | None, result: ImportResult, progress: Progress | None, total: int
) -> Callable[[int], None]:
    """What runs after each chunk's commit, in file order (from a pipeline's worker thread
    too): the job's counts and heartbeat (no job for a dry run), and the progress.

    The job's counts are those of the earlier attempts (as ``job`` was claimed) plus this
    run's: rows an earlier attempt wrote change nothing now, so they count once; rejected
    rows are found again by every run and count from this run only. The update is fenced by
    status and attempt, so a run that lost its job (``JobLost``) never writes over it."""

    def chunk_done(rows_done: int) -> None:
        if job is not None:
            moved = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, attempts=job.attempts).update(
                rows_done=rows_done,
                rows_total=total,
                heartbeat_at=timezone.now(),
                created=job.created + result.created,
                updated=job.updated + result.updated,
                merged=job.merged + result.merged,
                rejected=result.rejected,
                consent_events=job.consent_events + result.consent_events,
            )
            if not moved:
                raise JobLost(f"import job {job.pk} attempt {job.attempts} is no longer running")
        if progress:
            progress(rows_done, total)

    return chunk_done

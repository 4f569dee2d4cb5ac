"""Celery entry point of member imports: a thin wrapper around ``imports.jobs``."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import jobs


@shared_task(name="imports.tasks.run_import_job", acks_late=True, reject_on_worker_lost=True)
def run_import_job(job_id: int) -> dict[str, int | float] | None:
    """Import a big uploaded member file. Redelivered after a worker died, it claims the
    stale job and starts the file again; the import is idempotent, so nothing doubles.
    A file of more than ``IMPORT_SPLIT_ROWS`` rows goes on as chunk tasks (``imports.chunks``)."""
    result = jobs.run_job(job_id, split=True)
    return result.as_json() if result else None


@shared_task(name="imports.tasks.import_chunk", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_chunk(job_id: int, attempt: int, index: int, size: int) -> None:
    """One chunk of a split file, written in its turn (file order); delivered twice, or
    for an attempt that stopped, it does nothing (``imports.chunks.run_chunk``)."""
    from . import chunks

    chunks.run_chunk(job_id, attempt, index, size)


@shared_task(name="imports.tasks.mark_stalled_jobs", ignore_result=True)
def mark_stalled_jobs() -> int:
    """Beat, every minute: fail the running jobs whose worker stopped (no heartbeat for
    ``JOBS_STALE_AFTER_SECONDS``), with a reason the admin shows next to a retry button."""
    return len(jobs.mark_stalled_jobs())


@shared_task(name="imports.tasks.delete_import_files", autoretry_for=(OSError,), retry_backoff=30, max_retries=6)
def delete_import_files(job_ids: list[int], reason: str) -> int:
    """Delete these jobs' uploaded files (an erasure names them); safe to run twice."""
    from . import retention

    return retention.delete_job_files(job_ids, reason=reason)


@shared_task(name="imports.tasks.delete_expired_import_files", ignore_result=True)
def delete_expired_import_files() -> int:
    """Beat, daily: files older than IMPORT_FILE_RETENTION_DAYS go (imports.retention)."""
    from . import retention

    return retention.delete_expired_files()


@shared_task(
    name="imports.tasks.apply_platform_events",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=None,
)
def apply_platform_events(connection_id: int) -> int:
    """Apply what a store's platform pushed, in arrival order (imports.platform_events)."""
    from .platform_events import service

    return service.apply_waiting(connection_id)


@shared_task(name="imports.tasks.apply_stalled_platform_events", ignore_result=True)
def apply_stalled_platform_events() -> int:
    """Beat, every minute: apply pushed events still waiting after a minute."""
    from .platform_events import service

    return service.apply_stalled()

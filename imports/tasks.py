"""Celery entry point of member imports: a thin wrapper around ``imports.jobs``."""

from __future__ import annotations

from celery import shared_task

from . import jobs


@shared_task(name="imports.tasks.run_import_job", acks_late=True, reject_on_worker_lost=True)
def run_import_job(job_id: int) -> dict[str, int | float] | None:
    """Import a big uploaded member file. Redelivered after a worker died, it claims the
    stale job and starts the file again; the import is idempotent, so nothing doubles."""
    result = jobs.run_job(job_id)
    return result.as_json() if result else None

"""How long uploaded member files live (DESIGN.md ⚑ deletion: no clear personal data of
an erased person remains in any file).

A member file holds every row of a store's export: names, phones, e-mails. Once imported,
the database holds what the brand keeps; the file itself is kept only
``IMPORT_FILE_RETENTION_DAYS`` (default 30) for questions about the import, then a daily
beat task deletes it with its rejected-rows CSV. A preview that is cancelled loses its file
at once, and one never confirmed goes with the others after the retention period. An
erasure deletes at once the files of the person's stores (and unconfirmed previews of
their brands), because any of them may hold their row. The job rows stay (counts,
SHA-256, who and when): the consent ledger's evidence names the file by its SHA-256.

Files are deleted outside any transaction, before the row forgets them: a failure leaves
a row pointing at a missing file (harmless), never a file no row knows of.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue_on_commit

from . import chunks
from .models import ImportJob

logger = logging.getLogger(__name__)

UPLOAD_DIR = "imports"
CANCELLED = "Cancelled before the import: the file was deleted."


def _has_files() -> Q:
    return ~Q(file="") | ~Q(errors_file="")


def _delete_stored(name: str) -> None:
    if name:
        default_storage.delete(name)


def delete_job_files(job_ids: list[int], *, reason: str) -> int:
    """Delete the uploaded file and the rejected-rows CSV of these jobs, except running
    ones (their import still reads the file; retention takes it later). Safe to repeat."""
    deleted = 0
    jobs = ImportJob.objects.filter(pk__in=job_ids).filter(_has_files()).exclude(status=ImportJob.Status.RUNNING)
    for job in jobs:
        names = [job.file.name, job.errors_file.name]
        for name in names:
            _delete_stored(name)
        chunks.delete_files(job.pk)  # a split file's member ids and rejected rows (imports.chunks)
        # Only if the job did not start meanwhile (a confirm racing the deletion).
        updated = (
            ImportJob.objects.filter(pk=job.pk).exclude(status=ImportJob.Status.RUNNING).update(file="", errors_file="")
        )
        if updated:
            deleted += 1
            audit.record("imports.files_deleted", job, changes={"reason": reason, "files": sum(map(bool, names))})
    return deleted


def delete_expired_files(*, now: dt.datetime | None = None) -> int:
    """The daily task: files of jobs older than ``IMPORT_FILE_RETENTION_DAYS``, then stray
    files under ``MEDIA_ROOT/imports`` that no job names and are as old."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.IMPORT_FILE_RETENTION_DAYS)
    expired = list(ImportJob.objects.filter(_has_files(), created_at__lt=cutoff).values_list("pk", flat=True))
    deleted = delete_job_files(expired, reason="retention")
    return deleted + _delete_strays(cutoff)


def _delete_strays(cutoff: dt.datetime) -> int:
    known = set(ImportJob.objects.exclude(file="").values_list("file", flat=True))
    known |= set(ImportJob.objects.exclude(errors_file="").values_list("errors_file", flat=True))
    deleted = 0
    for name in _walk(UPLOAD_DIR):
        if name in known:
            continue
        try:
            modified = default_storage.get_modified_time(name)
        except (OSError, NotImplementedError):
            continue
        if modified < cutoff:
            _delete_stored(name)
            deleted += 1
    return deleted


def _walk(directory: str) -> list[str]:
    try:
        folders, files = default_storage.listdir(directory)
    except (FileNotFoundError, NotImplementedError):
        return []
    names = [f"{directory}/{name}" for name in files]
    for folder in folders:
        names += _walk(f"{directory}/{folder}")
    return names


def cancel_preview(job: ImportJob) -> bool:
    """The marketer cancelled the preview: the file goes at once and the job is closed
    (as failed, with the reason), so it can no longer be confirmed. False if the job was
    no longer waiting (confirmed meanwhile)."""
    closed = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.FAILED, message=CANCELLED, finished_at=timezone.now()
    )
    if not closed:
        return False
    audit.record("members.import_cancelled", job, changes={"store": job.store.code})
    delete_job_files([job.pk], reason="cancelled")
    return True


def jobs_with_files_of(member_ids: list[int], brand_ids: list[int]) -> list[int]:
    """Jobs whose files may hold a row of these members: those of every store they are a
    member of, and previews not confirmed yet at any store of their brands (the person's
    row may be in one that would have made them a member there)."""
    from members.models import StoreMembership

    stores = StoreMembership.objects.filter(member_id__in=member_ids).values("store_id")
    return list(
        ImportJob.objects.filter(_has_files())
        .filter(Q(store_id__in=stores) | Q(status=ImportJob.Status.PENDING, store__brand_id__in=brand_ids))
        .values_list("pk", flat=True)
    )


def on_member_erased(sender: Any, member_id: int, brand_ids: list[int] | None = None, **kwargs: Any) -> None:
    """Inside the erasure's transaction: name the files to delete in an outbox row (the
    deletion is slow I/O, after commit, retried until done)."""
    from members.models import Member

    people = [member_id, *Member.objects.filter(merged_into_id=member_id).values_list("pk", flat=True)]
    job_ids = jobs_with_files_of(people, list(brand_ids or []))
    if job_ids:
        enqueue_on_commit("imports.tasks.delete_import_files", job_ids, "erasure")

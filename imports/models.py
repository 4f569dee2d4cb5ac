"""An import of a store's member file, kept as the source of the consent events it wrote."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Store


class ImportJob(models.Model):
    """One import of a store's member file: the source of the consent events it records
    (``import-job:<id>``), its progress and counts, and the rejected rows as a CSV."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    store = models.ForeignKey(Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="import_jobs")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", blank=True)
    original_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    size = models.BigIntegerField(_("size (bytes)"), default=0)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    created_by = models.CharField(_("started by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Moved on by the running import's worker every few seconds (cdp.heartbeat) and after
    # every chunk; a job "running" with a heartbeat older than JOBS_STALE_AFTER_SECONDS lost
    # its worker: beat marks it failed, a redelivered task may claim it (imports.jobs).
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    rows_total = models.PositiveIntegerField(_("rows in file"), default=0)
    rows_done = models.PositiveIntegerField(_("rows processed"), default=0)
    created = models.PositiveIntegerField(_("members created"), default=0)
    updated = models.PositiveIntegerField(_("members updated"), default=0)
    merged = models.PositiveIntegerField(_("merges"), default=0)
    rejected = models.PositiveIntegerField(_("rows rejected"), default=0)
    consent_events = models.PositiveIntegerField(_("consent events"), default=0)
    seconds = models.FloatField(_("seconds"), default=0)
    errors_file = models.FileField(_("rejected rows (CSV)"), upload_to="imports/errors/%Y/%m/", blank=True)
    message = models.TextField(_("message"), blank=True)
    # When the file's consent answers were given, as the person importing it stated
    # (``imports.consent_time``): the time of the events of rows without their own.
    consent_at = models.DateTimeField(_("consent answers collected at"), null=True, blank=True)
    # The survivorship time of the file's rows (``service.observed_at_of``): the first
    # import of the same file into the store, so importing it again changes nothing.
    observed_at = models.DateTimeField(_("rows observed at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        # The store's name, as people call it ("莲花天猫旗舰店 · members-2026-03.csv").
        return f"{self.store.name} · {self.original_name}"

    @property
    def source_ref(self) -> str:
        return f"import-job:{self.pk}"

    @property
    def progress(self) -> int:
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else 0


# Registered with the app: the platforms' membership pushes (imports.platform_events).
from .platform_events.models import PlatformConnection, PlatformEvent  # noqa: E402

__all__ = ["ImportJob", "PlatformConnection", "PlatformEvent"]

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
    # Moved on by the running import after every chunk; a job that is "running" but has not
    # moved for a while lost its worker and may be claimed again (see imports.jobs).
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

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name} → {self.store_id}"

    @property
    def source_ref(self) -> str:
        return f"import-job:{self.pk}"

    @property
    def progress(self) -> int:
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else 0

"""Segments: consent-filtered audiences, their builds (snapshots), exports and the contact log.

A build's members become visible only when ``Segment.current_build`` points at it, which
happens in the same transaction that wrote them (DESIGN.md ⚑ atomic swap): a failed or
killed build leaves the previous one in place.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Purpose
from members.models import Brand, Member

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]*$", _("Use lower-case letters, digits and hyphens."))


class Segment(models.Model):
    class Schedule(models.TextChoices):
        MANUAL = "", _("Only when asked")
        HOURLY = "hourly", _("Every hour")
        DAILY = "daily", _("Every day")

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="segments")
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80, validators=[slug_validator])
    description = models.TextField(_("description"), blank=True)
    # ⚑ Every segment says what it is for and how people will be reached: consent is
    # checked for exactly this purpose and channel.
    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    rules = models.JSONField(_("rules"), default=dict)
    limit = models.PositiveIntegerField(
        _("at most"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Keep at most this many people (lowest member ids first), e.g. for a test send."),
    )
    schedule = models.CharField(_("refresh"), max_length=10, choices=Schedule.choices, blank=True, default="")
    current_build = models.ForeignKey(
        "SegmentBuild",
        verbose_name=_("current build"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["brand__name", "name"]
        constraints = [models.UniqueConstraint(fields=["brand", "slug"], name="segment_brand_slug_unique")]
        permissions = [
            ("build_segment", _("Can build segments")),
            ("export_segment", _("Can export segment members with their contact points")),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentBuild(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    segment = models.ForeignKey(Segment, verbose_name=_("segment"), on_delete=models.CASCADE, related_name="builds")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    # What was built: the rules, purpose and channel as they were when the build ran.
    rules = models.JSONField(_("rules"), default=dict)
    requested_by = models.CharField(_("requested by"), max_length=150, blank=True)
    requested_at = models.DateTimeField(_("requested"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Moved on every few seconds by the worker running the build (cdp.heartbeat): a build
    # "running" with a heartbeat older than JOBS_STALE_AFTER_SECONDS lost its worker, and
    # beat marks it failed (segments.services.mark_stalled_builds).
    heartbeat_at = models.DateTimeField(_("last heard from"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The funnel (DESIGN.md): each count is a subset of the one before.
    matched = models.PositiveIntegerField(_("matched by rules"), null=True, blank=True)
    consented = models.PositiveIntegerField(_("with consent"), null=True, blank=True)
    under_cap = models.PositiveIntegerField(_("under frequency cap"), null=True, blank=True)
    reachable = models.PositiveIntegerField(_("reachable"), null=True, blank=True)
    final = models.PositiveIntegerField(_("final"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("segment build")
        verbose_name_plural = _("segment builds")
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["segment", "-requested_at"])]

    def __str__(self) -> str:
        return f"{self.segment} #{self.pk}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def funnel(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in FUNNEL}


FUNNEL = ("matched", "consented", "under_cap", "reachable", "final")


class SegmentMember(models.Model):
    """One person in one build's snapshot. Written with INSERT … SELECT, never one by one."""

    pk = models.CompositePrimaryKey("build_id", "member_id")
    build = models.ForeignKey(SegmentBuild, on_delete=models.CASCADE, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", db_index=False)

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")


class SegmentExport(models.Model):
    """One use of a build's members: a file download, or a send whose contacts count
    towards frequency caps. Who was in it is in DataUsage (context ``segment_export`` and
    this export's id), which the person sees in the privacy center."""

    class Kind(models.TextChoices):
        DOWNLOAD = "download", _("File for review")
        SEND = "send", _("Campaign send")

    build = models.ForeignKey(SegmentBuild, verbose_name=_("build"), on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.SEND)
    campaign = models.CharField(_("campaign"), max_length=200, blank=True)
    created_by = models.CharField(_("by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("exported"), default=timezone.now)
    in_build = models.PositiveIntegerField(_("in the build"), default=0)
    exported = models.PositiveIntegerField(_("exported"), default=0)

    class Meta:
        verbose_name = _("segment export")
        verbose_name_plural = _("segment exports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return _("%(segment)s, export #%(id)s") % {"segment": self.build.segment, "id": self.pk}

    @property
    def excluded(self) -> int:
        """People in the build who could no longer be contacted when it was exported."""
        return self.in_build - self.exported

    @property
    def context_ref(self) -> str:
        return f"export:{self.pk}"


class ContactLog(models.Model):
    """What was sent to whom, on which channel: feeds the frequency cap."""

    # Sends are written 100,000 at a time with one INSERT … SELECT whose brand, purpose and
    # export are one checked value for the whole statement: database foreign keys on them
    # would only add a deferred check per row at commit (measured: seconds per 100k rows).
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="+")
    brand = models.ForeignKey(
        Brand, verbose_name=_("brand"), on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    purpose = models.ForeignKey(
        Purpose, verbose_name=_("purpose"), on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    export = models.ForeignKey(
        SegmentExport, verbose_name=_("export"), null=True, blank=True, on_delete=models.DO_NOTHING,
        related_name="+", db_constraint=False,
    )  # fmt: skip
    campaign = models.CharField(_("campaign"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("contact log entry")
        verbose_name_plural = _("contact log")
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["brand", "sent_at", "member"])]


class ContactPolicy(models.Model):
    """A brand's default frequency cap, for members who set none themselves."""

    brand = models.OneToOneField(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+")
    max_per_week = models.PositiveSmallIntegerField(
        _("messages per week at most"),
        help_text=_("Applies to members without their own preference; counts sends on every channel."),
    )

    class Meta:
        verbose_name = _("contact policy")
        verbose_name_plural = _("contact policies")

    def __str__(self) -> str:
        return f"{self.brand}: {self.max_per_week}/week"


def default_max_per_week(brand_id: int) -> int | None:
    policy = ContactPolicy.objects.filter(brand_id=brand_id).values_list("max_per_week", flat=True).first()
    return policy if policy is not None else settings.CONTACT_DEFAULT_MAX_PER_WEEK

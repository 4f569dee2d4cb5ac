"""Webhook subscriptions of a brand and the log of every delivery.

A delivery row is made per subscription and event, in the transaction that publishes the
event, and sent by a Celery task after commit; failures are retried with exponential
backoff and dead-lettered after ``WEBHOOK_MAX_ATTEMPTS``. The body is stored exactly as
sent, so a redelivery sends the same bytes (signed with a fresh timestamp). Deliveries
about one member to one subscription go one at a time, in sequence order (DESIGN.md ⚑
"Webhooks keep per-member order"); every attempt is kept in ``DeliveryAttempt``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand


class EventType(models.TextChoices):
    CONSENT_CHANGED = "consent.changed", _("Consent changed")
    MEMBER_MERGED = "member.merged", _("Members merged")
    MEMBER_ERASED = "member.erased", _("Member erased")
    SEGMENT_BUILT = "segment.built", _("Segment built")


class Subscription(models.Model):
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="+")
    url = models.URLField(_("receiver URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    # Needed in clear to sign each delivery; shown to the subscriber once, when created.
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    description = models.CharField(_("description"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["brand", "is_active"])]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.events)})"


class MemberSequence(models.Model):
    """The last sequence number given to a webhook about this member: payloads carry the
    next one, so receivers can drop a payload older than one they already applied."""

    member_id = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("member sequence")


class DeliveryQuerySet(models.QuerySet):
    def free_to_send(self, *, stale_before: dt.datetime) -> DeliveryQuerySet:
        """Deliveries that no other delivery to the same subscription about the same
        member holds back: none with a lower sequence is unfinished, and no other is being
        sent (one whose attempt started before ``stale_before`` lost its worker and holds
        nothing back). Deliveries without a member (``segment.built``) are not ordered."""
        holding_back = Delivery.objects.filter(
            ~Q(pk=OuterRef("pk")),
            Q(sequence__lt=OuterRef("sequence")) | Q(status=Delivery.Status.SENDING, last_attempt_at__gte=stale_before),
            subscription_id=OuterRef("subscription_id"),
            member_id=OuterRef("member_id"),
            status__in=Delivery.UNFINISHED,
        )
        return self.filter(Q(member_id__isnull=True) | ~Exists(holding_back))


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Waiting to retry")
        SUCCEEDED = "succeeded", _("Delivered")
        DEAD = "dead", _("Dead letter")

    # Still to be sent: these hold back later deliveries of the same subscription and member.
    UNFINISHED = (Status.PENDING, Status.SENDING, Status.RETRYING)

    subscription = models.ForeignKey(
        Subscription, verbose_name=_("subscription"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(_("event"), max_length=30, choices=EventType.choices)
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4)
    member_id = models.BigIntegerField(_("member"), null=True, blank=True)
    sequence = models.BigIntegerField(_("sequence"), null=True, blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    # Every attempt, also those before a redelivery (the history is in DeliveryAttempt);
    # retries and the dead letter count those since the last redelivery.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    attempts_before_redelivery = models.PositiveSmallIntegerField(_("attempts before redelivery"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        # A publishing task run twice finds its deliveries by this (``services.publish``).
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"], name="delivery_subscription_event_unique")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # What holds a delivery back (DeliveryQuerySet.free_to_send) and what goes next:
            # small, since finished deliveries leave it.
            models.Index(
                fields=["subscription", "member_id", "sequence"],
                condition=Q(status__in=["pending", "sending", "retrying"]),
                name="webhooks_delivery_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk} → {self.subscription_id}"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery and the receiver's answer. Kept for good, also when
    staff redeliver, so the admin shows the whole history of a delivery."""

    delivery = models.ForeignKey(
        Delivery, verbose_name=_("webhook delivery"), on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["number", "pk"]

    def __str__(self) -> str:
        return f"#{self.delivery_id} attempt {self.number}"


# --- Erasure (DESIGN.md ⚑ deletion) ---------------------------------------------------------

ERASED_BODY = '{"erased": true}'


def forget_member_deliveries(member_ids: list[int]) -> int:
    """Stored bodies of finished deliveries about an erased person say what was sent about
    them (their store member ids, consent choices): each becomes a stub. The rows stay,
    with status, attempts and times, as the record that the receiver was told. Unfinished
    deliveries keep their bodies until sent: they carry the person's withdrawals to the
    stores (``member.erased`` among them), which need them to erase their copies."""
    finished = Delivery.objects.filter(member_id__in=member_ids).exclude(status__in=Delivery.UNFINISHED)
    return finished.exclude(body=ERASED_BODY).update(body=ERASED_BODY, last_error="")


def _on_member_erased(sender: object, member_id: int, **kwargs: object) -> None:
    # Sent inside the erasure's transaction: the stubs commit with it. Deliveries of
    # members merged into the erased one carry their own ids.
    from members.models import Member

    people = [member_id, *Member.objects.filter(merged_into_id=member_id).values_list("pk", flat=True)]
    forget_member_deliveries(people)


def _connect_erasure() -> None:
    from members.signals import member_erased

    member_erased.connect(_on_member_erased, dispatch_uid="webhooks.forget_member_deliveries")


_connect_erasure()


# --- Consent files (docs/api.md "Consent files") -----------------------------------------------


class ConsentFileFeed(models.Model):
    """A receiver that cannot take webhooks gets the brand's consent events as a daily file
    set instead (``webhooks.feeds``). ``cursor`` is the ledger id up to which every event
    has been considered: it moves only in the transaction that records a file."""

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    # Only people who are members of this store (and only its member ids in the files).
    store = models.ForeignKey(
        "members.Store",
        verbose_name=_("store"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Only people who are members of this store, with only this store's member ids."),
    )
    # Needed in clear to sign each file; shown to the receiver once, when created.
    secret = models.CharField(_("signing secret"), max_length=100, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    cursor = models.BigIntegerField(_("last ledger event considered"), default=0, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("consent file feed")
        verbose_name_plural = _("consent file feeds")
        ordering = ["brand", "name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class ConsentFile(models.Model):
    """One file set written for a feed: CSV, JSON Lines, their signatures and a manifest,
    under ``MEDIA_ROOT/<directory>``. The row stays after retention deletes the files."""

    feed = models.ForeignKey(ConsentFileFeed, verbose_name=_("feed"), on_delete=models.PROTECT, related_name="files")
    number = models.PositiveIntegerField(_("number"))
    directory = models.CharField(_("directory"), max_length=300)
    # The ledger ids this file covers: after_event_id < id <= up_to_event_id.
    after_event_id = models.BigIntegerField(_("after event"))
    up_to_event_id = models.BigIntegerField(_("up to event"))
    events = models.PositiveIntegerField(_("events"), default=0)
    counts = models.JSONField(_("counts by action"), default=dict)
    first_event_id = models.BigIntegerField(_("first event"), null=True, blank=True)
    last_event_id = models.BigIntegerField(_("last event"), null=True, blank=True)
    # {"<file name>": {"sha256": "…", "bytes": n}} for the CSV, JSONL and the manifest.
    hashes = models.JSONField(_("files"), default=dict)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    deleted_at = models.DateTimeField(_("files deleted"), null=True, blank=True)

    class Meta:
        verbose_name = _("consent file")
        verbose_name_plural = _("consent files")
        ordering = ["-created_at", "-id"]
        permissions = [("download_consentfile", _("Can download consent files"))]
        constraints = [models.UniqueConstraint(fields=["feed", "number"], name="consent_file_feed_number_unique")]

    def __str__(self) -> str:
        return f"{self.feed.name} #{self.number}"

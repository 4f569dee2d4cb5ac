"""Webhook subscriptions of a brand and the log of every delivery.

A delivery row is made per subscription and event, in the transaction that publishes the
event, and sent by a Celery task after commit; failures are retried with exponential
backoff and dead-lettered after ``WEBHOOK_MAX_ATTEMPTS``. The body is stored exactly as
sent, so a redelivery sends the same bytes (signed with a fresh timestamp).
"""

from __future__ import annotations

import uuid

from django.db import models
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


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Waiting to retry")
        SUCCEEDED = "succeeded", _("Delivered")
        DEAD = "dead", _("Dead letter")

    subscription = models.ForeignKey(
        Subscription, verbose_name=_("subscription"), on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(_("event"), max_length=30, choices=EventType.choices)
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4)
    member_id = models.BigIntegerField(_("member"), null=True, blank=True)
    sequence = models.BigIntegerField(_("sequence"), null=True, blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk} → {self.subscription_id}"

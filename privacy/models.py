"""Consumer accounts and data-subject requests.

Imported by ``consent.models`` so they belong to the ``consent`` app. A consumer signs in
with an ordinary ``auth.User`` (allauth); ``PrivacyAccount`` says which Member that person
proved to be, and stores the phone number allauth verifies (allauth keeps e-mails itself).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand, Member


class PrivacyAccount(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="privacy_account"
    )
    # Set only after the person proved they own a phone or e-mail the member holds.
    member = models.ForeignKey(
        Member,
        verbose_name=_("member"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="privacy_accounts",
    )
    phone = models.CharField(_("phone"), max_length=20, null=True, blank=True, unique=True)  # E.164
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    linked_at = models.DateTimeField(_("linked"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("privacy center account")
        verbose_name_plural = _("privacy center accounts")

    def __str__(self) -> str:
        return f"account {self.pk} → member {self.member_id or '-'}"


def default_due_at() -> dt.datetime:
    """The deadline of a request made now under the default jurisdiction. Services set
    ``due_at`` from the request's own jurisdiction (``privacy.deadlines``)."""
    from .deadlines import due_at

    return due_at(settings.DSR_DEFAULT_JURISDICTION, timezone.now())


def default_jurisdiction() -> str:
    return settings.DSR_DEFAULT_JURISDICTION


class DataSubjectRequest(models.Model):
    """A person's request to access, correct or delete their data, or to withdraw every
    consent (PIPL Arts. 15, 45-47; GDPR Arts. 15-17; 152-FZ Arts. 14, 20-21). Due by the
    rule of its jurisdiction (``privacy.deadlines``); ``due_at`` moves when the
    deadline is extended. Changes go through ``privacy.services``."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("Copy of my data")
        CORRECTION = "correction", _("Correction")
        DELETION = "deletion", _("Deletion")
        WITHDRAW_ALL = "withdraw_all", _("Withdraw all consent")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        REJECTED = "rejected", _("Rejected")

    class Via(models.TextChoices):
        PRIVACY_CENTER = "privacy_center", _("Privacy center")
        PHONE = "phone", _("Phone call")
        LETTER = "letter", _("Letter")
        STORE_COUNTER = "store_counter", _("At a store counter")
        EMAIL = "email", _("E-mail")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="data_requests")
    account = models.ForeignKey(
        PrivacyAccount,
        verbose_name=_("account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requests",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.RECEIVED)
    details = models.TextField(_("details"), blank=True)
    # How it reached us: the privacy center, or recorded by staff from a call, a letter,
    # a store counter or an e-mail (``rights.record_offline_request``).
    received_via = models.CharField(_("received by"), max_length=20, choices=Via.choices, default=Via.PRIVACY_CENTER)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    due_at = models.DateTimeField(_("due"), default=default_due_at)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    jurisdiction = models.CharField(
        _("jurisdiction"), max_length=10, choices=Brand.Jurisdiction.choices, default=default_jurisdiction
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_data_requests",
        limit_choices_to={"is_staff": True},
    )
    # The one extension the law allows: when, from which deadline, and why (shown to the person).
    extended_at = models.DateTimeField(_("extended"), null=True, blank=True)
    original_due_at = models.DateTimeField(_("first due"), null=True, blank=True)
    extension_reason = models.TextField(_("reason for the extension"), blank=True)
    # Shown to the person: why the request was refused, or a note on its completion.
    response = models.TextField(_("answer to the person"), blank=True)
    # What was done (counts of erased rows, events recorded, …); never personal data.
    outcome = models.JSONField(_("outcome"), default=dict, blank=True)

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "due_at"]), models.Index(fields=["member", "received_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.get_status_display()})"

    OPEN = (Status.RECEIVED, Status.IN_PROGRESS)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()

"""Core models: the audit log, API keys and the outbox."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditLog(models.Model):
    """Who did what to which object, when and from where.

    Written by services (through ``cdp.audit.record``) and by every admin add, change and
    delete. Rows are never edited; the admin shows them read-only.
    """

    class ActorType(models.TextChoices):
        USER = "user", _("User")
        API_KEY = "api_key", _("API key")
        SYSTEM = "system", _("System")

    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor_type = models.CharField(_("actor type"), max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # A readable name that survives the user's deletion ("alice", "key cdp_3f9a…", "celery").
    actor_label = models.CharField(_("actor"), max_length=150)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("details"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"


class ApiKeyScope(models.TextChoices):
    MEMBERS_READ = "members:read", _("Read members")
    MEMBERS_WRITE = "members:write", _("Create and update members")
    CONSENT_READ = "consent:read", _("Check consent, read preferences")
    CONSENT_WRITE = "consent:write", _("Record consent events, change preferences")
    ORDERS_WRITE = "orders:write", _("Record orders")
    SEGMENTS_READ = "segments:read", _("List segments, build them, read their members")
    WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhook subscriptions")


class ApiKey(models.Model):
    """A key for one system (a store, a platform connector) to call the REST API.

    Only the SHA-256 of the key is stored: the full key is shown once, when it is made
    (``cdp.api_keys.issue_api_key``). The visible prefix lets people tell keys apart in
    the admin and in logs without revealing them. A key acts for exactly one brand and,
    when ``store`` is set, for that store only.
    """

    name = models.CharField(_("name"), max_length=100, help_text=_("Who uses it, e.g. 'Tmall connector'."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    brand = models.ForeignKey(
        "members.Brand", verbose_name=_("brand"), on_delete=models.PROTECT, related_name="api_keys"
    )
    store = models.ForeignKey(
        "members.Store",
        verbose_name=_("store"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
        help_text=_("Leave empty for a key that may act for every store of the brand."),
    )
    scopes = models.JSONField(_("scopes"), default=list)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class OutboxMessage(models.Model):
    """A side effect waiting to be handed to Celery (DESIGN.md ⚑ "Side effects go through
    the outbox").

    Written by ``cdp.enqueue`` in the transaction of the change that causes it, so the
    change and its side effect commit or roll back together; ``cdp.outbox`` sends it after
    commit and marks it sent once the broker accepted it, or backs it off until
    ``available_at`` when the broker did not.
    """

    task = models.CharField(_("task"), max_length=200)
    # Emptied once sent: a row keeps its arguments only while it may be sent again (the
    # final erasure receipt carries the erased address in them).
    args = models.JSONField(_("arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)
    # Not before this (a task sent with a countdown): passed to Celery as the ETA.
    eta = models.DateTimeField(_("run at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    available_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    # A relay sending the row holds it until then; another relay leaves it alone meanwhile.
    claimed_until = models.DateTimeField(_("being sent until"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        ordering = ["-id"]
        indexes = [
            # Partial indexes of the waiting rows stay as small as the backlog: relays take
            # the next due rows in order, /healthz reads the oldest one's age.
            models.Index(fields=["available_at", "id"], condition=Q(sent_at__isnull=True), name="cdp_outbox_due"),
            models.Index(fields=["created_at"], condition=Q(sent_at__isnull=True), name="cdp_outbox_waiting"),
            # Pruning finds old sent rows.
            models.Index(fields=["sent_at"], condition=Q(sent_at__isnull=False), name="cdp_outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.task}"

    @property
    def task_id(self) -> str:
        """The Celery task id of every send of this row: consumers that must not act twice
        on one side effect can recognise a repeat by it (``cdp.outbox.message_id``)."""
        return f"outbox-{self.pk}"

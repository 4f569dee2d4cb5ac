"""Platforms that push membership events (入会) to a brand, and the events they pushed."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Notice, Purpose
from members.models import Member, Platform, Store


class PlatformConnection(models.Model):
    """How one store's platform pushes membership events: the adapter that reads them,
    the shared secret that signs them, and what joining means for consent (the purpose
    that records the membership agreement and the notice version the store shows)."""

    class Adapter(models.TextChoices):
        TMALL = "tmall", _("Tmall / Taobao member sync")
        DOUYIN = "douyin", _("Douyin shop member push")
        WECHAT = "wechat", _("WeChat member card events")
        GENERIC = "generic", _("Generic (Standard Webhooks)")

    store = models.OneToOneField(
        Store, verbose_name=_("store"), on_delete=models.PROTECT, related_name="platform_connection"
    )
    adapter = models.CharField(_("adapter"), max_length=10, choices=Adapter.choices)
    # The platform's id of the brand's app (Tmall app_key, Douyin shop app id, WeChat appid):
    # a push naming another app is refused even when signed.
    app_id = models.CharField(_("platform app id"), max_length=100, blank=True)
    # Needed in clear to check each push's signature (Tmall app secret, Douyin app secret,
    # WeChat token, or a ``whsec_`` secret for the generic adapter).
    secret = models.CharField(_("shared secret"), max_length=200)
    agreement_purpose = models.ForeignKey(
        Purpose, verbose_name=_("membership agreement purpose"), on_delete=models.PROTECT, related_name="+"
    )
    agreement_notice = models.ForeignKey(
        Notice, verbose_name=_("membership agreement shown"), on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("platform connection")
        verbose_name_plural = _("platform connections")
        ordering = ["store__code"]

    def __str__(self) -> str:
        return f"{self.store} ({self.get_adapter_display()})"

    def clean(self) -> None:
        errors = {}
        brand_id = self.store.brand_id if self.store_id else None
        if self.agreement_purpose_id and self.agreement_purpose.brand_id != brand_id:
            errors["agreement_purpose"] = _("Choose a purpose of the store's brand.")
        if self.agreement_notice_id:
            notice = self.agreement_notice
            if notice.brand_id != brand_id:
                errors["agreement_notice"] = _("Choose a notice of the store's brand.")
            elif notice.purpose_id not in (None, self.agreement_purpose_id):
                errors["agreement_notice"] = _("Choose the membership agreement or a notice of that purpose.")
        if errors:
            raise ValidationError(errors)


DEFAULT_ADAPTER = {
    Platform.TMALL: PlatformConnection.Adapter.TMALL,
    Platform.DOUYIN: PlatformConnection.Adapter.DOUYIN,
    Platform.WECHAT: PlatformConnection.Adapter.WECHAT,
}


class PlatformEvent(models.Model):
    """One event a platform pushed, kept so that the same event pushed again (platforms
    retry until they see a 2xx) is answered without being applied twice, and as the
    source (``platform-event:<id>``) of the consent events it recorded.

    The push is answered once its events are stored (``pending``); a worker applies them
    after, in the order they arrived (``imports.platform_events.service``). The event's
    values (``StoreRecord`` values: phone numbers, names) wait here until it is applied,
    and are emptied then: the profile and the ledger keep what is needed."""

    class Kind(models.TextChoices):
        JOINED = "joined", _("joined")
        UPDATED = "updated", _("updated")
        ENDED = "ended", _("unbound")

    class Outcome(models.TextChoices):
        PENDING = "pending", _("waiting to be applied")
        APPLIED = "applied", _("applied")
        IGNORED = "ignored", _("ignored")
        FAILED = "failed", _("failed")

    connection = models.ForeignKey(
        PlatformConnection, verbose_name=_("connection"), on_delete=models.PROTECT, related_name="events"
    )
    event_id = models.CharField(_("platform event id"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    member = models.ForeignKey(
        Member, verbose_name=_("member"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    occurred_at = models.DateTimeField(_("happened"))
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    values = models.JSONField(_("values to apply"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("platform event")
        verbose_name_plural = _("platform events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "event_id"], name="platform_event_connection_id_unique")
        ]
        indexes = [
            models.Index(fields=["member"], name="platform_event_member"),
            # What the workers apply next, per connection, in arrival order.
            models.Index(fields=["connection", "id"], condition=Q(outcome="pending"), name="platform_event_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.connection.store.code} {self.event_id}"

"""What a person prefers (channels, frequency, quiet hours, topics), the do-not-send list,
and the log of where their data went (data usage)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand, Member

from .purposes import Channel, Purpose, SourceType


class Preference(models.Model):
    """How a member wants to hear from a brand. Changes are kept in PreferenceChange."""

    class PromotionType(models.TextChoices):
        DISCOUNT = "discount", _("Discounts")
        SPEND_AND_SAVE = "spend_and_save", _("Spend-and-save (满减)")
        POINTS = "points", _("Points")
        GIFTS = "gifts", _("Gifts")
        NEW_ARRIVALS = "new_arrivals", _("New arrivals")

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="preferences")
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+")
    channels = models.JSONField(_("preferred channels"), default=list, blank=True)
    max_per_week = models.PositiveSmallIntegerField(_("messages per week at most"), null=True, blank=True)
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    topics = models.JSONField(_("topics"), default=list, blank=True)
    promotion_types = models.JSONField(_("promotion types"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [models.UniqueConstraint(fields=["member", "brand"], name="preference_member_brand_unique")]

    def __str__(self) -> str:
        return f"{self.member_id} @ {self.brand_id}"


class PreferenceChange(models.Model):
    preference = models.ForeignKey(Preference, on_delete=models.CASCADE, related_name="changes")
    changed_at = models.DateTimeField(_("changed"), default=timezone.now)
    source_type = models.CharField(_("source"), max_length=20, choices=SourceType.choices)
    source_ref = models.CharField(_("source reference"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict)

    class Meta:
        verbose_name = _("preference change")
        verbose_name_plural = _("preference changes")
        ordering = ["-changed_at", "-id"]


class Suppression(models.Model):
    """A contact point nobody may be sent anything on (hard bounce, complaint, manual),
    whatever consent says; ``brand`` empty means every brand.

    The contact point is kept as its keyed hash (``value_hash``: ``erased_value`` of the
    normalised phone or e-mail, the value an identity takes when its person is erased),
    never in clear: a suppression outlives the person's erasure and still works, and the
    set-based consent filter compares it with the hash of each member's phone or e-mail
    in SQL (``members.erasure_sql``). ``value`` is only a masked form for staff, emptied
    when the person is erased (DESIGN.md ⚑ deletion)."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Complaint")
        MANUAL = "manual", _("Added by staff")

    brand = models.ForeignKey(Brand, verbose_name=_("brand"), null=True, blank=True, on_delete=models.CASCADE)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    value = models.CharField(_("contact point (masked)"), max_length=254, blank=True)
    value_hash = models.CharField(_("contact point (keyed hash)"), max_length=80)
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    created_at = models.DateTimeField(_("added"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppression list")
        indexes = [models.Index(fields=["value_hash", "channel"], name="suppression_hash_channel")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.value or '—'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A row made with a clear contact point (a shell, a fixture, an old caller): it is
        # stored the one way, hashed and masked; ``add_suppression`` does this itself.
        if self.value and not self.value_hash:
            from members.masking import mask_email, mask_phone

            self.value_hash = suppression_hash(self.channel, self.value)
            self.value = mask_email(self.value) if "@" in self.value else mask_phone(self.value)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "value", "value_hash"}
        super().save(*args, **kwargs)


# The identity kind whose keyed hash a suppression of each channel stores.
SUPPRESSION_HASH_KIND = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.PHONE: "phone"}


def suppression_hash(channel: str, value: str) -> str:
    """The keyed hash a suppression of ``value`` (normalised) on ``channel`` is stored under."""
    from members.identities import erased_value

    return erased_value(SUPPRESSION_HASH_KIND.get(channel, channel), value)


class DataUsage(models.Model):
    """A member's data left the system (export, API segment read): who, why, how, when."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="data_usage")
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), on_delete=models.CASCADE, related_name="+")
    purpose = models.ForeignKey(Purpose, verbose_name=_("purpose"), on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    context_type = models.CharField(_("context"), max_length=30)  # segment_export, api_segment_read, …
    context_ref = models.CharField(_("reference"), max_length=200, blank=True)  # segment slug, export id
    # The campaign's name as the marketer typed it for the export (shown to the person).
    campaign = models.CharField(_("campaign"), max_length=200, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("data usage")
        verbose_name_plural = _("data usage log")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["member", "occurred_at"])]

"""Subscriptions and the delivery log, with every attempt and a "redeliver" action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp.admin import ReadOnlyAdminMixin

from . import services
from .models import Delivery, DeliveryAttempt, Subscription


class SubscriptionForm(forms.ModelForm):
    """The API's URL rule (``services.check_url``: public https receivers only unless
    ``WEBHOOK_ALLOW_PRIVATE_URLS``). The admin shows subscriptions read-only today; the
    form holds the rule for the day it lets staff add or edit one."""

    url = forms.URLField(label=_("receiver URL"), max_length=500, assume_scheme="https")

    class Meta:
        model = Subscription
        fields = ["brand", "url", "events", "description", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.check_url(url)
        except services.WebhookError as exc:
            raise forms.ValidationError(exc.message, code="url") from None
        return url


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["url", "brand", "event_list", "is_active", "created_at", "created_by"]
    list_filter = ["brand", "is_active"]
    search_fields = ["url", "description"]
    exclude = ["secret"]

    @admin.display(description=_("events"))
    def event_list(self, obj: Subscription) -> str:
        return ", ".join(obj.events)


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "error"]
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk", "event_type", "subscription", "member_id", "sequence", "status", "attempts", "last_status_code",
        "next_attempt_at", "created_at", "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", "event_type", "subscription__brand"]
    search_fields = ["event_id", "member_id", "subscription__url"]
    list_select_related = ["subscription"]
    date_hierarchy = "created_at"
    readonly_fields = ["waiting_for"]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description=_("waiting for"))
    def waiting_for(self, obj: Delivery) -> str:
        """The earlier delivery about the same member that this one waits for, if any."""
        if obj.member_id is None or obj.status not in Delivery.UNFINISHED:
            return "-"
        pair = Delivery.objects.filter(subscription_id=obj.subscription_id, member_id=obj.member_id)
        earlier = (
            pair.filter(sequence__lt=obj.sequence, status__in=Delivery.UNFINISHED)
            .order_by("sequence")
            .values_list("pk", "sequence")
            .first()
        )
        return _("#%(pk)s (sequence %(sequence)s)") % {"pk": earlier[0], "sequence": earlier[1]} if earlier else "-"

    @admin.action(description=_("Redeliver the selected deliveries"), permissions=["view"])
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm("webhooks.change_delivery"):
            messages.error(request, _("You may not redeliver webhooks."))
            return
        count, late = services.redeliver(list(queryset))
        messages.success(
            request,
            ngettext("Queued %(count)d delivery again.", "Queued %(count)d deliveries again.", count)
            % {"count": count},
        )
        if late:
            messages.warning(
                request,
                ngettext(
                    "%(count)d of them is older than a delivery about the same member that was already delivered: "
                    "it arrives after that one, with its lower sequence number.",
                    "%(count)d of them are older than a delivery about the same member that was already delivered: "
                    "they arrive after it, with their lower sequence number.",
                    late,
                )
                % {"count": late},
            )

"""Subscriptions and the delivery log, with a "redeliver" action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp.admin import ReadOnlyAdminMixin

from . import services
from .models import Delivery, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["url", "brand", "event_list", "is_active", "created_at", "created_by"]
    list_filter = ["brand", "is_active"]
    search_fields = ["url", "description"]
    exclude = ["secret"]

    @admin.display(description=_("events"))
    def event_list(self, obj: Subscription) -> str:
        return ", ".join(obj.events)


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
    actions = ["redeliver"]

    @admin.action(description=_("Redeliver the selected deliveries"), permissions=["view"])
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm("webhooks.change_delivery"):
            messages.error(request, _("You may not redeliver webhooks."))
            return
        count = services.redeliver(list(queryset))
        messages.success(
            request,
            ngettext("Queued %(count)d delivery again.", "Queued %(count)d deliveries again.", count)
            % {"count": count},
        )

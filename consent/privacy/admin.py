"""The privacy officer's list of data-subject requests (a richer queue is another issue)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import DataSubjectRequest, PrivacyAccount


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "member", "received_at", "due_at", "overdue", "completed_at")
    list_filter = ("status", "kind")
    search_fields = ("=id", "=member__id")
    ordering = ("status", "due_at")
    date_hierarchy = "received_at"
    list_select_related = ("member",)
    readonly_fields = ("member", "account", "kind", "details", "received_at", "completed_at", "outcome")
    fields = ("member", "account", "kind", "details", "status", "received_at", "due_at", "completed_at", "outcome")

    @admin.display(boolean=True, description=_("overdue"))
    def overdue(self, obj: DataSubjectRequest) -> bool:
        return obj.is_open and obj.due_at < timezone.now()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people make requests in the privacy center

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a request is a record of what a person asked for


@admin.register(PrivacyAccount)
class PrivacyAccountAdmin(admin.ModelAdmin):
    list_display = ("id", "member", "phone_verified", "created_at", "linked_at", "closed_at")
    list_filter = ("phone_verified",)
    search_fields = ("=id", "=member__id")
    list_select_related = ("member",)
    readonly_fields = ("user", "member", "phone", "phone_verified", "created_at", "linked_at", "closed_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

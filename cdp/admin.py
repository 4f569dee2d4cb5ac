"""Admin of the core app, and the mixins every other admin builds on."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from . import audit
from .models import AuditLog


class AuditedAdminMixin:
    """Mirror every admin add, change and delete into the audit log, with the IP."""

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record("admin.add", obj, changes={"message": message})
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record("admin.change", obj, changes={"message": message})
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit.record("admin.delete", obj)
        return super().log_deletions(request, queryset)  # type: ignore[misc]


class ReadOnlyAdminMixin:
    """Evidence and logs: viewable, never added, changed or deleted from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "actor_type", "action", "object_type", "object_repr", "ip_address"]
    list_filter = ["actor_type", "action", "object_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "object_id", "object_repr", "action"]
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False

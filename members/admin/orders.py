"""Orders, read-only: facts reported by stores."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp.admin import ReadOnlyAdminMixin

from ..models import Order


class GuestFilter(admin.SimpleListFilter):
    title = _("buyer")
    parameter_name = "buyer"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("member", _("member")), ("guest", _("guest"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "member":
            return queryset.filter(member__isnull=False)
        if self.value() == "guest":
            return queryset.filter(member__isnull=True)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Orders are facts reported by stores: read-only here."""

    list_display = ["external_id", "store", "member", "amount", "currency", "placed_at"]
    list_filter = [GuestFilter, "store__brand", "store__platform", "store", ("placed_at", admin.DateFieldListFilter)]
    search_fields = ["external_id"]
    list_select_related = ["store", "member"]
    date_hierarchy = "placed_at"
    show_full_result_count = False
    fields = ["store", "external_id", "member", "amount", "currency", "placed_at", "categories", "created_at"]

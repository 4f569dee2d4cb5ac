"""Brands and their stores, with their store and member counts."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp.admin import AuditedAdminMixin
from cdp.admin_scope import staff_brand_ids

from ..models import Brand, Store


@admin.register(Brand)
class BrandAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "code", "jurisdiction", "color", "store_count", "created_at"]
    list_filter = ["jurisdiction"]
    search_fields = ["name", "code"]
    filter_horizontal = ["staff"]

    def get_readonly_fields(self, request: HttpRequest, obj: Brand | None = None) -> list[str]:
        # Who works for which brand is decided by those who see every brand.
        fields = list(super().get_readonly_fields(request, obj))
        return fields if staff_brand_ids(request.user) is None else [*fields, "staff"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Brand]:
        return super().get_queryset(request).annotate(_stores=Count("stores"))

    @admin.display(description=_("stores"), ordering="_stores")
    def store_count(self, obj: Brand) -> int:
        return obj._stores


@admin.register(Store)
class StoreAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "code", "brand", "platform", "city", "is_active", "member_count"]
    list_filter = ["brand", "platform", "is_active"]
    search_fields = ["name", "code", "city"]
    list_select_related = ["brand"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, obj: Store) -> int:
        return obj._members

"""Brands and their stores, with their store and member counts, and a brand's go-live
checklist (``BRAND_CHECKLIST``: each app adds its steps, as ``MEMBER_SECTIONS`` does)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin
from modeltranslation.utils import build_localized_fieldname

from cdp.admin import AuditedAdminMixin
from cdp.admin_scope import staff_brand_ids
from cdp.models import ApiKey

from ..models import Brand, Store

# A step: brand → (what, done, where to do it). Apps above members append theirs.
ChecklistStep = Callable[[Brand], tuple[str, bool, str]]
BRAND_CHECKLIST: list[ChecklistStep] = []


def _stores_step(brand: Brand) -> tuple[str, bool, str]:
    url = reverse("admin:members_store_changelist") + "?" + urlencode({"brand__id__exact": brand.pk})
    return str(_("Stores set up")), brand.stores.filter(is_active=True).exists(), url


def _staff_step(brand: Brand) -> tuple[str, bool, str]:
    return str(_("Staff assigned")), brand.staff.exists(), reverse("admin:members_brand_change", args=[brand.pk])


def _api_key_step(brand: Brand) -> tuple[str, bool, str]:
    live = ApiKey.objects.filter(brand=brand, revoked_at__isnull=True).exists()
    return str(_("An API key issued")), live, reverse("admin:cdp_apikey_add")


BRAND_CHECKLIST.extend([_stores_step, _staff_step, _api_key_step])


@admin.register(Brand)
class BrandAdmin(AuditedAdminMixin, TranslationAdmin):
    list_display = ["name", "code", "jurisdiction", "color", "store_count", "created_at"]
    list_filter = ["jurisdiction"]
    search_fields = ["name", "code"]
    filter_horizontal = ["staff"]
    readonly_fields = ["checklist", "entry_link"]
    fieldsets = [
        (None, {"fields": ["code", "name", "jurisdiction", "legal_name", "privacy_email", "address"]}),
        (
            _("Face in the privacy center"),
            {
                "fields": [
                    tuple(build_localized_fieldname("display_name", code) for code, _label in settings.LANGUAGES),
                    "logo",
                    "color",
                    ("support_phone", "support_email"),
                    "sms_signature",
                    "privacy_host",
                    "entry_link",
                ],
                "description": _(
                    "What shoppers who come from this brand see: its name, logo and colour, and whom to ask. "
                    "They still see and manage every brand of the group that holds their data."
                ),
            },
        ),
        (_("Languages and signals"), {"fields": ["language_fallbacks", "honour_gpc"]}),
        (_("Staff"), {"fields": ["staff"]}),
        (_("Go-live checklist"), {"fields": ["checklist"]}),
    ]

    @admin.display(description=_("entry link"))
    def entry_link(self, obj: Brand) -> str:
        """For QR codes at the counter, receipts and texts: the privacy center in this brand's face."""
        if obj.pk is None:
            return "—"
        path = reverse("privacy:enter", args=[obj.code])
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', path, path)

    @admin.display(description=_("go-live checklist"))
    def checklist(self, obj: Brand) -> str:
        if obj.pk is None:
            return "—"
        steps = [step(obj) for step in BRAND_CHECKLIST]
        return format_html(
            '<ul class="checklist">{}</ul>',
            format_html_join(
                "",
                '<li><span aria-hidden="true">{}</span> <span class="visually-hidden">{}</span> <a href="{}">{}</a></li>',
                (("✓" if done else "✗", _("done") if done else _("to do"), url, label) for label, done, url in steps),
            ),
        )

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

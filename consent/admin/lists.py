"""The projection, checkpoints, verifications, preferences, data usage and suppressions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp.admin import AuditedAdminMixin, ReadOnlyAdminMixin
from members.admin import PiiAuditMixin
from members.identities import RecordError

from .. import services
from ..models import (
    Checkpoint,
    ConsentState,
    DataUsage,
    LedgerVerification,
    Preference,
    PreferenceChange,
    Suppression,
)
from .filters import PurposeListFilter

# --- The projection, checkpoints, preferences, suppressions, usage -----------------------


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["member", "brand", "purpose_code", "channel", "action", "occurred_at", "by_guardian", "event"]
    list_filter = ["brand", ("purpose", PurposeListFilter), "channel", "action", "by_guardian"]
    list_select_related = ["member", "brand", "purpose__brand", "event"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["member", "brand", "purpose", "channel", "action", "occurred_at", "by_guardian", "event"]

    @admin.display(description=_("purpose"), ordering="purpose__code")
    def purpose_code(self, obj: ConsentState) -> str:
        return obj.purpose.code


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "last_event_id", "event_count", "chain_count", "merkle_root"]
    fields = list_display


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at", "finished_at", "ok", "events_checked", "checkpoint_id", "first_error", "projection_ok",
        "projection_differences",
    ]  # fmt: skip
    list_filter = ["ok", "projection_ok"]
    fields = [
        "started_at", "finished_at", "ok", "events_checked", "checkpoint", "first_error", "projection_ok",
        "projection_differences", "projection_first_difference",
    ]  # fmt: skip


class PreferenceChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PreferenceChange
    extra = 0
    fields = readonly_fields = ["changed_at", "source_type", "source_ref", "changes"]


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Preferences change through ``services.update_preferences`` (privacy center, API)."""

    list_display = ["member", "brand", "channels", "max_per_week", "quiet_start", "quiet_end", "language", "updated_at"]
    list_filter = ["brand", "language"]
    list_select_related = ["member", "brand"]
    show_full_result_count = False
    inlines = [PreferenceChangeInline]
    fields = [
        "member", "brand", "channels", "max_per_week", "quiet_start", "quiet_end", "topics", "promotion_types",
        "language", "updated_at",
    ]  # fmt: skip


@admin.register(DataUsage)
class DataUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "member", "brand", "purpose_code", "channel", "context_type", "context_ref"]
    list_filter = ["brand", ("purpose", PurposeListFilter), "channel", "context_type"]
    list_select_related = ["member", "brand", "purpose"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["occurred_at", "member", "brand", "purpose", "channel", "context_type", "context_ref"]

    @admin.display(description=_("purpose"), ordering="purpose__code")
    def purpose_code(self, obj: DataUsage) -> str:
        return obj.purpose.code


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["brand", "channel", "value", "reason", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("channel") and cleaned.get("value"):
            try:
                cleaned["value"] = services.contact_point(cleaned["channel"], cleaned["value"])
            except RecordError as exc:
                self.add_error("value", exc.message)
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(PiiAuditMixin, AuditedAdminMixin, admin.ModelAdmin):
    """Added and removed, never edited: a wrong entry is removed and added again."""

    form = SuppressionForm
    list_filter = ["channel", "reason", "brand"]
    list_select_related = ["brand"]
    search_fields = ["=value"]
    search_help_text = _("The exact phone number (any format) or e-mail address")
    ADD_FIELDS = ["brand", "channel", "value", "reason", "note"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        """Through the service, like the bounce and complaint handlers (audited there)."""
        saved = services.add_suppression(
            channel=obj.channel, value=obj.value, reason=obj.reason, brand=obj.brand, note=obj.note
        )
        obj.pk, obj.created_at = saved.pk, saved.created_at

    # The contact point is kept as a keyed hash and a masked form (``Suppression``): what
    # every role sees is the masked one.
    list_display = ["created_at", "channel", "value", "brand", "reason", "note"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return self.ADD_FIELDS
        return ["brand", "channel", "value", "reason", "note", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    # Contact points of no member in particular: the audit row names the entries shown.
    def pii_on_page(self, obj: Suppression) -> dict[str, Any]:
        return {"member_ids": [], "suppressions": [obj.pk]}

    def pii_in_list(self, results: list[Suppression]) -> dict[str, Any]:
        return {"member_ids": [], "suppressions": [s.pk for s in results]}

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> tuple[Any, bool]:
        """The exact contact point in any format, found by its keyed hash."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(pk__in=services.suppressions_matching(term).values("pk")), False

"""The ledger: evidence, viewable and exportable, never added, changed or deleted here
(the model and the database refuse too). Evidence values (IP, user agent, …) are shown
only to staff with ``members.view_pii``, decided per request like the member pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import ReadOnlyAdminMixin
from cdp.csvutil import csv_response
from members.admin import PiiAuditMixin
from members.masking import audit_pii_view, can_view_pii

from .. import evidence
from ..models import (
    ConsentEvent,
)
from ..receipts import receipt_urls
from . import paper
from .filters import CanonicalMemberFilter, PurposeListFilter, pretty_json

# --- The ledger ----------------------------------------------------------------------------


class _QuerysetOnlyChangeList(ChangeList):
    """The changelist's filtering, search and ordering without counting or paging: an
    export needs the queryset, and a count over a large ledger is the slow part."""

    def get_results(self, request: HttpRequest) -> None:
        self.result_list = self.queryset
        self.result_count = self.full_result_count = None
        self.show_full_result_count = False


@admin.register(ConsentEvent)
class ConsentEventAdmin(PiiAuditMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "member_link", "brand", "purpose_code", "channel", "action", "occurred_at", "recorded_at",
        "source_type", "source_ref",
    ]  # fmt: skip
    list_filter = [
        CanonicalMemberFilter,
        "brand",
        ("purpose", PurposeListFilter),
        "channel",
        "source_type",
        "action",
        ("occurred_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["member", "brand", "purpose__brand"]
    search_fields = ["=source_ref", "=external_id"]
    search_help_text = _("An exact source reference (store code, import job, user) or external event id")
    date_hierarchy = "occurred_at"
    sortable_by = ["id", "occurred_at", "recorded_at"]  # the indexed ones
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over the whole ledger
    list_per_page = 100
    actions = ["download_csv"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # evidence is never deleted
        return actions

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        evidence = "evidence_shown" if can_view_pii(request.user) else "evidence_masked"
        return [
            (None, {"fields": ["member_link", "brand", "purpose", "channel", "action", "by_guardian"]}),
            (_("When"), {"fields": ["occurred_at", "recorded_at"]}),
            (_("Source"), {"fields": ["source_type", "source_ref", "store", "external_id"]}),
            (_("Notice and evidence"), {"fields": ["notice_shown", evidence, "receipt"]}),
            (_("Hash chain"), {"fields": ["seq", "prev_hash", "hash"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def pii_on_page(self, obj: ConsentEvent) -> dict[str, Any] | None:
        # IP, user agent, the phone of an SMS reply: shown in full to staff with view_pii.
        return {"member": obj.member, "event": obj.pk} if obj.evidence else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsentEvent]:
        # The detail page shows every relation. The changelist ignores list_select_related
        # once the queryset has a select_related, so this one serves both.
        return super().get_queryset(request).select_related(*self.list_select_related, "store", "notice")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        if getattr(request, "_consent_export", False):
            return _QuerysetOnlyChangeList
        return super().get_changelist(request, **kwargs)

    # --- Columns and detail fields -----------------------------------------------------
    @admin.display(description=_("member"), ordering="member_id")
    def member_link(self, obj: ConsentEvent) -> str:
        url = reverse("admin:members_member_change", args=[obj.member_id])
        return format_html('<a href="{}">{}</a>', url, obj.member)

    @admin.display(description=_("purpose"))
    def purpose_code(self, obj: ConsentEvent) -> str:
        return obj.purpose.code

    @admin.display(description=_("notice shown"))
    def notice_shown(self, obj: ConsentEvent) -> str:
        if obj.notice is None:
            return "—"
        url = reverse("admin:consent_notice_change", args=[obj.notice_id])
        return format_html('<a href="{}">{}</a><br>SHA-256 <code>{}</code>', url, obj.notice, obj.notice.sha256)

    @admin.display(description=_("evidence"))
    def evidence_shown(self, obj: ConsentEvent) -> str:
        return format_html("<pre>{}</pre>", pretty_json(obj.evidence))

    @admin.display(description=_("evidence"))
    def evidence_masked(self, obj: ConsentEvent) -> str:
        return format_html("<pre>{}</pre>", pretty_json(evidence.masked_evidence(obj.evidence)))

    @admin.display(description=_("receipt"))
    def receipt(self, obj: ConsentEvent) -> str:
        try:
            url = reverse("admin:consent_consentevent_receipt", args=[obj.pk])
        except NoReverseMatch:  # receipts are an optional module
            return "—"
        return format_html('<a href="{}">{}</a>', url, _("Show the receipt"))

    # --- Export and report ----------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        custom = [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="consent_consentevent_export"),
            *receipt_urls(self.admin_site, scan_link=paper.scan_link),
            *paper.paper_urls(self),
        ]
        return custom + super().get_urls()

    def ledger_csv(self, request: HttpRequest, queryset: QuerySet[ConsentEvent]) -> HttpResponse:
        audit.record("consent.ledger_exported", changes={"query": dict(request.GET.lists())})
        evidence_values = can_view_pii(request.user)
        if evidence_values:
            members = queryset.order_by().values_list("member_id", flat=True).distinct()
            audit_pii_view("consent_consentevent_export", member_ids=members)
        rows = evidence.ledger_rows(queryset, evidence_values=evidence_values)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return csv_response(f"consent-ledger-{stamp}.csv", evidence.LEDGER_CSV_HEADER, rows)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The current changelist (filters, search, date, ordering) as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request._consent_export = True  # type: ignore[attr-defined]
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:consent_consentevent_changelist") + "?e=1")
        return self.ledger_csv(request, changelist.queryset)

    @admin.action(description=_("Download the selected events as CSV"), permissions=["view"])
    def download_csv(self, request: HttpRequest, queryset: QuerySet[ConsentEvent]) -> HttpResponse:
        return self.ledger_csv(request, queryset)

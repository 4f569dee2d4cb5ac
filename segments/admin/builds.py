"""Builds, exports and their files in the admin: build history with the funnel, retrying
a failed build, letting a build's members out (send or review) and the files of an export
(the sheet for people, the gateway file for the sending system). Every write goes through a
service; every download is audited."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import AuditedAdminMixin, ReadOnlyAdminMixin
from cdp.csvutil import csv_response
from members.masking import audit_pii_view

from .. import exports, files, services
from ..models import FUNNEL, ContactLog, ContactPolicy, SegmentBuild, SegmentExport
from ..queries import EXPORT_HEADER, export_rows, exported_members

FUNNEL_LABELS = {
    "matched": _("matched by rules"),
    "consented": _("with consent"),
    "under_cap": _("under frequency cap"),
    "reachable": _("reachable"),
    "final": _("final"),
}


def funnel_html(build: SegmentBuild | None) -> str:
    if build is None or build.final is None:
        return "—"
    return format_html_join(
        " → ", "<span title='{}'>{}</span>", ((FUNNEL_LABELS[n], f"{getattr(build, n):,}") for n in FUNNEL)
    )


def audit_download(export: SegmentExport, what: str) -> None:
    """Every download of an export's file: an audit row, and the PII view of who was in it."""
    audit.record("segment.export_downloaded", export, changes={"rows": export.exported, "file": what})
    audit_pii_view(
        "segments_segmentexport_csv",
        member_ids=exported_members(export).values_list("pk", flat=True),
        export=export.pk,
    )


def gateway_response(export: SegmentExport, phones: str) -> HttpResponse:
    """The gateway file of a campaign send (``segments.files``), streamed; ``phones`` is
    ``e164`` or ``national`` (11-digit Chinese mobile numbers)."""
    segment = export.build.segment
    what = _("gateway file")  # outside the f-string, where makemessages finds it
    filename = f"{segment.brand.code}-{segment.slug}-{what}-{export.pk}.csv"
    rows = files.gateway_rows(export, segment, phone_format=phones)
    return csv_response(filename, files.gateway_header(segment.channel), rows, for_machines=True)


class ExportForm(forms.Form):
    kind = forms.ChoiceField(choices=SegmentExport.Kind.choices, initial=SegmentExport.Kind.SEND, label=_("Kind"))
    campaign = forms.CharField(max_length=200, required=False, label=_("Campaign"))


@admin.register(SegmentBuild)
class SegmentBuildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "status", "funnel", "requested_at", "duration", "requested_by", "attempts"]
    list_filter = ["status", "segment__brand"]
    list_select_related = ["segment"]
    search_fields = ["segment__name", "segment__slug"]
    fields = ["segment", "status", "error", "rules_shown", "requested_by", "requested_at", "started_at",
              "heartbeat_at", "finished_at", "attempts", *FUNNEL]  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/segments/segmentbuild/change_form.html"
    actions = ["retry_selected"]

    @admin.display(description=_("funnel"))
    def funnel(self, obj: SegmentBuild) -> str:
        return funnel_html(obj)

    @admin.display(description=_("seconds"))
    def duration(self, obj: SegmentBuild) -> str:
        return f"{obj.seconds:.2f}" if obj.seconds is not None else "—"

    @admin.display(description=_("rules"))
    def rules_shown(self, obj: SegmentBuild) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.rules, ensure_ascii=False, indent=2))

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/export/", self.admin_site.admin_view(self.export_view), name="segments_segmentbuild_export"),
            path("<int:pk>/retry/", self.admin_site.admin_view(self.retry_view), name="segments_segmentbuild_retry"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        build = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if build is not None:
            exports = list(build.exports.select_related("build__segment").order_by("-created_at")[:20])
            for export in exports:
                export.links = export_links(export)
            extra.update(
                exports=exports,
                export_form=ExportForm(),
                can_export=request.user.has_perm("segments.export_segment")
                and build.status == SegmentBuild.Status.SUCCEEDED,
                can_retry=self.has_build_permission(request) and build.status == SegmentBuild.Status.FAILED,
            )
        return super().change_view(request, object_id, form_url, extra)

    def has_build_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("segments.build_segment")

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_build_permission(request):
            raise PermissionDenied
        self._retry(request, [get_object_or_404(self.get_queryset(request), pk=pk)])
        return HttpResponseRedirect(reverse("admin:segments_segmentbuild_change", args=[pk]))

    @admin.action(description=_("Retry the selected failed builds"), permissions=["build"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[SegmentBuild]) -> None:
        self._retry(request, list(queryset.select_related("segment")))

    def _retry(self, request: HttpRequest, builds: list[SegmentBuild]) -> None:
        for build in builds:
            try:
                services.retry_build(build)  # the task is sent once this commits
            except services.BuildError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            build.refresh_from_db()
            if build.status == SegmentBuild.Status.SUCCEEDED:  # in-process tasks (demo)
                text, level = _("%(segment)s: build #%(build)s ran again and finished."), messages.SUCCESS
            elif build.status == SegmentBuild.Status.FAILED:
                text, level = _("%(segment)s: build #%(build)s ran again and failed: %(error)s"), messages.ERROR
            else:
                text = _("%(segment)s: build #%(build)s is queued again; this page shows it when it is done.")
                level = messages.INFO
            self.message_user(
                request, text % {"segment": build.segment, "build": build.pk, "error": build.error}, level
            )

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return _export(self, request, pk)


def _export(model_admin: SegmentBuildAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("segments.export_segment"):
        raise PermissionDenied
    build = get_object_or_404(model_admin.get_queryset(request), pk=pk)
    form = ExportForm(request.POST)
    back = reverse("admin:segments_segmentbuild_change", args=[pk])
    if not form.is_valid():
        model_admin.message_user(request, _("Choose a kind of export."), messages.ERROR)
        return HttpResponseRedirect(back)
    try:
        export = exports.export_build(
            build, kind=form.cleaned_data["kind"], campaign=form.cleaned_data["campaign"],
        )  # fmt: skip
    except (services.BuildError, ValidationError) as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return HttpResponseRedirect(back)
    model_admin.message_user(
        request,
        _("Export #%(id)s: %(exported)s of %(in_build)s people (the others withdrew or can no longer be reached).")
        % {"id": export.pk, "exported": f"{export.exported:,}", "in_build": f"{export.in_build:,}"},
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:segments_segmentexport_change", args=[export.pk]))


@admin.register(SegmentExport)
class SegmentExportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "kind", "campaign", "in_build", "exported", "created_by", "created_at", "download"]
    list_filter = ["kind", "build__segment__brand"]
    list_select_related = ["build__segment"]
    fields = ["build", "kind", "campaign", "created_by", "created_at", "in_build", "exported", "download"]
    readonly_fields = fields

    @admin.display(description=_("files"))
    def download(self, obj: SegmentExport) -> str:
        return export_links(obj)

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/csv/", self.admin_site.admin_view(self.csv_view), name="segments_segmentexport_csv"),
            path(
                "<int:pk>/gateway/",
                self.admin_site.admin_view(self.gateway_view),
                name="segments_segmentexport_gateway",
            ),
            *super().get_urls(),
        ]

    def _export_to_download(self, request: HttpRequest, pk: int, what: str) -> SegmentExport:
        if not request.user.has_perm("segments.export_segment"):
            raise PermissionDenied
        export = self.get_queryset(request).select_related("build__segment__brand").filter(pk=pk).first()
        if export is None:
            raise Http404
        audit_download(export, what)
        return export

    def csv_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The sheet for people: who the export let out, with the contact point for its
        channel, Excel-safe. Needs the export permission (full contact points); every
        download is audited."""
        export = self._export_to_download(request, pk, "sheet")
        segment = export.build.segment
        what = _("sheet")  # outside the f-string, where makemessages finds it
        filename = f"{segment.brand.code}-{segment.slug}-{what}-{export.pk}.csv"
        return csv_response(filename, EXPORT_HEADER, export_rows(export, segment.channel))

    def gateway_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The file for the channel's sending system (``segments.files``): campaign sends
        only; ``?phones=national`` for 11-digit Chinese mobile numbers."""
        export = self._export_to_download(request, pk, "gateway")
        if export.kind != SegmentExport.Kind.SEND:
            raise Http404("a file for review has no gateway file")
        phones = request.GET.get("phones", "e164")
        if phones not in files.PHONE_FORMATS:
            return HttpResponse(_("phones must be e164 or national."), status=400, content_type="text/plain")
        return gateway_response(export, phones)


def export_links(export: SegmentExport) -> str:
    """The download links of an export: the sheet, and for a campaign send its gateway file."""
    links = [(reverse("admin:segments_segmentexport_csv", args=[export.pk]), _("Sheet (Excel)"))]
    if export.kind == SegmentExport.Kind.SEND:
        gateway = reverse("admin:segments_segmentexport_gateway", args=[export.pk])
        links.append((gateway, _("Gateway file")))
        if export.build.segment.channel in files.PHONE_CHANNELS:
            links.append((gateway + "?phones=national", _("Gateway file, 11-digit numbers")))
    return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(ContactLog)
class ContactLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["sent_at", "member_id", "brand", "purpose", "channel", "campaign", "export_id"]
    list_filter = ["channel", "brand"]
    search_fields = ["=member__id", "campaign"]
    list_select_related = ["brand", "purpose"]
    show_full_result_count = False


@admin.register(ContactPolicy)
class ContactPolicyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["brand", "max_per_week"]

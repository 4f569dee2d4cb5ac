"""The segment editor for marketers: the list with the last funnel; a visual builder of
condition rows (translated field names, value pickers fed from the segment's brand only)
that writes the rules JSON, the source of truth that still works without JavaScript; the
slug made from the name; a live count of the consent funnel before saving; "Build now";
and "Build and export", which gives the gateway file in one step. Every write goes through
a service; every object is looked up through the staff member's brand scope."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from cdp.admin_scope import scoped
from consent.models import Purpose
from members.models import Brand

from .. import exports, files, pickers, services
from ..models import Segment, SegmentBuild, SegmentExport
from ..queries import dry_run_counts
from ..rules import FIELDS
from ..rules.fields import OP_LABELS
from .builds import FUNNEL_LABELS, audit_download, funnel_html, gateway_response


class SegmentForm(forms.ModelForm):
    rules = forms.JSONField(
        label=_("Rules"),
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "class": "vLargeTextField", "spellcheck": "false"}),
        help_text=_(
            'JSON: {"all": [...]}, {"any": [...]}, {"not": {...}}, leaves {"field", "op", "value", "within_days"}.'
        ),
    )

    class Meta:
        model = Segment
        fields = ["brand", "name", "slug", "description", "purpose", "channel", "rules", "limit", "schedule"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = _("Left empty, it is made from the name (Chinese in pinyin).")
        if self.is_bound or "brand" not in self.fields or "purpose" not in self.fields:
            return
        # Purposes of the segment's brand only: its own when editing, the staff member's
        # one brand when adding (the page's script narrows the list when a brand is chosen).
        brand_id = self.instance.brand_id
        if brand_id is None:
            brands = list(self.fields["brand"].queryset.values_list("pk", flat=True)[:2])
            if len(brands) == 1:
                brand_id = self.initial["brand"] = brands[0]
        if brand_id is not None:
            self.fields["purpose"].queryset = self.fields["purpose"].queryset.filter(brand_id=brand_id)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("slug") and data.get("name") and "slug" not in self.errors:
            data["slug"] = services.suggest_slug(
                brand=data.get("brand"), name=data["name"], exclude_pk=self.instance.pk
            )
        if "rules" in self.errors:
            return data
        problems = services.segment_problems(
            brand=data.get("brand"),
            purpose=data.get("purpose"),
            channel=data.get("channel", ""),
            rules=data.get("rules"),
        )
        for field, messages_ in problems.items():
            for message in messages_:
                self.add_error(field if field in self.fields else None, message)
        return data


class BuildExportForm(forms.Form):
    """What "Build and export" needs besides the segment: the campaign's name and, for
    SMS and phone, how the gateway wants the numbers."""

    campaign = forms.CharField(max_length=200, required=False, label=_("Campaign"))
    phones = forms.ChoiceField(
        choices=[("e164", _("+86 numbers (E.164)")), ("national", _("11-digit numbers"))],
        initial="e164",
        required=False,
        label=_("Numbers as"),
    )


def rule_fields_data() -> list[dict[str, Any]]:
    """The rule catalogue as the builder script reads it, in the active language."""
    return [
        {
            "name": f.name,
            "label": str(f.label or f.name),
            "group": f.group,
            "group_label": str(f.group_label),
            "kind": f.kind,
            "ops": [{"op": op, "label": str(OP_LABELS[f.kind][op])} for op in f.ops],
            "window": f.window,
            "choices": list(f.choices),
            "help": str(f.help),
        }
        for f in FIELDS.values()
    ]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["name", "slug", "brand", "purpose", "channel", "schedule", "last_status", "funnel", "built_at"]
    list_filter = ["brand", "channel", "schedule"]
    search_fields = ["name", "slug", "description"]
    list_select_related = ["brand", "purpose__brand", "current_build"]
    prepopulated_fields = {"slug": ("name",)}
    actions = ["build_selected"]
    change_form_template = "admin/segments/segment/change_form.html"
    readonly_fields = ["created_by", "created_at", "updated_at"]

    @admin.display(description=_("last build"))
    def last_status(self, obj: Segment) -> str:
        return obj.current_build.get_status_display() if obj.current_build else _("never built")

    @admin.display(description=_("funnel"))
    def funnel(self, obj: Segment) -> str:
        return funnel_html(obj.current_build)

    @admin.display(description=_("built"))
    def built_at(self, obj: Segment) -> Any:
        return obj.current_build.finished_at if obj.current_build else None

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"rules": {"all": []}, **super().get_changeform_initial_data(request)}

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "purpose":
            kwargs["queryset"] = Purpose.objects.filter(is_active=True).select_related("brand")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        if not obj.slug:
            obj.slug = services.suggest_slug(brand=obj.brand, name=obj.name, exclude_pk=obj.pk)
        services.save_segment(obj)  # the admin's user is the current actor

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("count/", view(self.count_view), name="segments_segment_count"),
            path("values/", view(self.values_view), name="segments_segment_values"),
            path("<int:pk>/build/", view(self.build_view), name="segments_segment_build"),
            path("<int:pk>/build-export/", view(self.build_export_view), name="segments_segment_build_export"),
            path(
                "<int:pk>/build-export/<int:build_id>/",
                view(self.build_export_wait_view),
                name="segments_segment_build_export_wait",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        segment = self.get_object(request, object_id)
        extra = {**(extra_context or {}), **self._editor_context(request)}
        if segment is not None:
            builds = list(SegmentBuild.objects.filter(segment=segment).order_by("-requested_at", "-id")[:20])
            extra.update(
                builds=builds,
                current=segment.current_build,
                current_funnel=funnel_html(segment.current_build),
                can_build=request.user.has_perm("segments.build_segment"),
                can_build_export=self._may_build_export(request),
                build_export_form=BuildExportForm(),
                phone_channel=segment.channel in files.PHONE_CHANNELS,
            )
        return super().change_view(request, object_id, form_url, extra)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        return super().add_view(request, form_url, {**(extra_context or {}), **self._editor_context(request)})

    def _editor_context(self, request: HttpRequest) -> dict[str, Any]:
        purposes = scoped(Purpose.objects.filter(is_active=True), request.user).order_by("brand_id", "code")
        return {
            "rule_fields": list(FIELDS.values()),
            "rule_fields_data": rule_fields_data(),
            "segment_purposes_data": [
                {"id": pk, "brand": brand_id, "channels": channels or []}
                for pk, brand_id, channels in purposes.values_list("pk", "brand_id", "channels")
            ],
            "count_url": reverse("admin:segments_segment_count"),
            "values_url": reverse("admin:segments_segment_values"),
            "funnel_labels": FUNNEL_LABELS,
        }

    # --- The editor's helpers (nothing is written) ------------------------------------

    def values_view(self, request: HttpRequest) -> HttpResponse:
        """The builder's value pickers for one of the staff member's brands (``?brand=id``;
        ⚑ brand wall: another brand's id is a 404)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        brand_id = request.GET.get("brand", "")
        if not brand_id.isdigit():
            return JsonResponse({"errors": ["?brand=<id> is required."]}, status=400)
        brand = get_object_or_404(scoped(Brand.objects.all(), request.user), pk=int(brand_id))
        return JsonResponse({"brand": brand.pk, "fields": pickers.rule_values(brand)})

    def count_view(self, request: HttpRequest) -> HttpResponse:
        """The editor's live count: the funnel for the rules in the form, written nowhere."""
        if request.method != "POST":
            return JsonResponse({"errors": ["POST the form to count."]}, status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            purposes = scoped(Purpose.objects.select_related("brand"), request.user)
            purpose = purposes.get(pk=int(request.POST.get("purpose", "")))
            rules = json.loads(request.POST.get("rules", ""))
        except (ValueError, Purpose.DoesNotExist):
            return JsonResponse(
                {"errors": [str(_("Choose a purpose and write the rules as JSON to count."))]}, status=400
            )
        segment = Segment(brand=purpose.brand, purpose=purpose, channel=request.POST.get("channel", ""), rules=rules)
        problems = services.segment_problems(brand=purpose.brand, purpose=purpose, channel=segment.channel, rules=rules)
        if problems:
            return JsonResponse({"errors": [m for found in problems.values() for m in found]}, status=400)
        counts = dry_run_counts(segment)  # segment_problems validated the rules
        return JsonResponse({"counts": counts, "labels": {k: str(v) for k, v in FUNNEL_LABELS.items()}})

    # --- Builds -------------------------------------------------------------------------

    def build_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[pk]))
        if not request.user.has_perm("segments.build_segment"):
            raise PermissionDenied
        segment = get_object_or_404(self.get_queryset(request), pk=pk)
        self._request_builds(request, [segment])
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[pk]))

    @admin.action(description=_("Build the selected segments now"), permissions=["build"])
    def build_selected(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        self._request_builds(request, list(queryset))

    def has_build_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("segments.build_segment")

    def _request_builds(self, request: HttpRequest, segments: list[Segment]) -> None:
        for segment in segments:
            try:
                build, created = services.request_build(segment)
            except services.BuildError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            build.refresh_from_db()
            if not created:
                text = _("%(segment)s: build #%(build)s is already %(status)s.")
                level = messages.WARNING
            elif build.status == SegmentBuild.Status.SUCCEEDED:  # in-process tasks (demo)
                text = _("%(segment)s: build #%(build)s finished.")
                level = messages.SUCCESS
            else:
                text = _("%(segment)s: build #%(build)s is %(status)s; this page shows it when it is done.")
                level = messages.INFO
            params = {"segment": segment, "build": build.pk, "status": build.get_status_display().lower()}
            self.message_user(request, text % params, level)

    # --- Build and export: the gateway file in one step ----------------------------------

    def _may_build_export(self, request: HttpRequest) -> bool:
        return request.user.has_perm("segments.build_segment") and request.user.has_perm("segments.export_segment")

    def build_export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Build the segment now and let its members out as a campaign send, answering with
        the gateway file. When the build runs in a worker, the answer is a page that waits
        for it and then fetches the file (by itself with JavaScript, with one button
        without)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._may_build_export(request):
            raise PermissionDenied
        segment = get_object_or_404(self.get_queryset(request), pk=pk)
        back = reverse("admin:segments_segment_change", args=[pk])
        form = BuildExportForm(request.POST)
        if not form.is_valid():
            self.message_user(request, _("Check the campaign name and the number format."), messages.ERROR)
            return HttpResponseRedirect(back)
        try:
            build, _created = services.request_build(segment)
        except services.BuildError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(back)
        build.refresh_from_db()
        if build.status == SegmentBuild.Status.SUCCEEDED:  # in-process tasks (demo, tests)
            return self._export_file(request, segment, build, form)
        wait = reverse("admin:segments_segment_build_export_wait", args=[pk, build.pk])
        return HttpResponseRedirect(f"{wait}?{urlencode(form.cleaned_data)}")

    def build_export_wait_view(self, request: HttpRequest, pk: int, build_id: int) -> HttpResponse:
        """GET: the build's progress (the page reloads itself while it runs). POST, once the
        build succeeded: export it and answer with the gateway file."""
        if not self._may_build_export(request):
            raise PermissionDenied
        segment = get_object_or_404(self.get_queryset(request).select_related("brand"), pk=pk)
        build = get_object_or_404(SegmentBuild.objects.filter(segment=segment), pk=build_id)
        form = BuildExportForm(request.POST if request.method == "POST" else request.GET)
        if not form.is_valid():
            form = BuildExportForm({"phones": "e164"})
            form.is_valid()
        if request.method == "POST":
            if build.status != SegmentBuild.Status.SUCCEEDED:
                return HttpResponseRedirect(request.path)
            return self._export_file(request, segment, build, form)
        exported = list(build.exports.filter(kind=SegmentExport.Kind.SEND).order_by("-created_at")[:5])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Build and export: %(segment)s") % {"segment": segment},
            "opts": self.model._meta,
            "original": segment,
            "build": build,
            "funnel": funnel_html(build),
            "active": build.status in services.ACTIVE,
            "succeeded": build.status == SegmentBuild.Status.SUCCEEDED,
            "exported": exported,
            "form": form,
            "phone_channel": segment.channel in files.PHONE_CHANNELS,
        }
        return TemplateResponse(request, "admin/segments/segment/build_export.html", context)

    def _export_file(
        self, request: HttpRequest, segment: Segment, build: SegmentBuild, form: BuildExportForm
    ) -> HttpResponse:
        try:
            export = exports.export_build(build, kind=SegmentExport.Kind.SEND, campaign=form.cleaned_data["campaign"])
        except (services.BuildError, ValidationError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))
        export = SegmentExport.objects.select_related("build__segment__brand").get(pk=export.pk)
        audit_download(export, "gateway")
        return gateway_response(export, form.cleaned_data["phones"] or "e164")

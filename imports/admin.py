"""Admin pages for member files: import (choose a store, upload, preview, confirm), the
import jobs with progress, counts and rejected rows, and the export of a store's members.

Small files are imported when confirmed; files over IMPORT_ASYNC_THRESHOLD_BYTES go to
Celery as an ImportJob. Every problem with a file is a page saying so (400), never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import ReadOnlyAdminMixin
from cdp.csvutil import csv_response
from cdp.enqueue import enqueue_on_commit
from members.masking import audit_pii_view
from members.models import Store, StoreMembership

from . import jobs
from .columns import EXPORT_COLUMNS
from .models import ImportJob
from .readers import FileProblem, inspect
from .resources import export_rows
from .service import scan

ENCODINGS = [("", _("Detect")), ("utf-8", "UTF-8"), ("gb18030", "GB18030 / GBK"), ("utf-16", "UTF-16")]


class ImportForm(forms.Form):
    store = forms.ModelChoiceField(
        queryset=Store.objects.filter(is_active=True).select_related("brand"), label=_("store")
    )
    file = forms.FileField(label=_("member file (CSV or XLSX)"))
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False, label=_("encoding"))


class ExportForm(forms.Form):
    store = forms.ModelChoiceField(queryset=Store.objects.select_related("brand"), label=_("store"))


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "original_name", "store", "status", "progress_shown", "created", "updated", "merged",
                    "rejected", "consent_events", "created_by", "created_at", "errors_link"]  # fmt: skip
    list_filter = ["status", "store"]
    list_select_related = ["store"]
    fields = readonly_fields = [
        "store", "original_name", "status", "message", "progress_shown", "rows_total", "rows_done", "created",
        "updated", "merged", "rejected", "consent_events", "seconds", "sha256", "size", "encoding", "attempts",
        "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "errors_link",
    ]  # fmt: skip
    change_list_template = "admin/imports/importjob/change_list.html"

    @admin.display(description=_("progress"))
    def progress_shown(self, job: ImportJob) -> str:
        return f"{job.progress}%"

    @admin.display(description=_("rejected rows"))
    def errors_link(self, job: ImportJob) -> str:
        if not job.errors_file:
            return "–"
        url = reverse("admin:imports_importjob_errors", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, _("download CSV"))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="imports_importjob_import"),
            path("<int:job_id>/confirm/", wrap(self.confirm_view), name="imports_importjob_confirm"),
            path("<int:job_id>/errors.csv", wrap(self.errors_view), name="imports_importjob_errors"),
            path("export/", wrap(self.export_view), name="imports_importjob_export"),
            *super().get_urls(),
        ]

    def _can_import(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imports.add_importjob")

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self._can_import(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None, initial={"store": request.GET.get("store")})
        status = 200
        if request.method == "POST":
            if form.is_valid():
                store = form.cleaned_data["store"]
                job = jobs.create_job(
                    store=store, upload=form.cleaned_data["file"], encoding=form.cleaned_data["encoding"]
                )
                try:
                    if job.size > settings.IMPORT_ASYNC_THRESHOLD_BYTES:
                        # Too big to preview row by row while the browser waits: check that
                        # the file is readable, count its rows, and let Celery do the rest.
                        info = inspect(Path(job.file.path), encoding=job.encoding or None)
                        found = scan(info)
                        preview, rows = None, found.rows
                    else:
                        preview = jobs.preview(job)
                        rows = preview.rows
                except FileProblem as exc:
                    jobs.discard(job, reason=str(exc))
                    form.add_error("file", str(exc))
                    status = 400
                else:
                    return TemplateResponse(
                        request,
                        "admin/imports/importjob/preview.html",
                        self._context(request, title=_("Check the import"), job=job, preview=preview, rows=rows,
                                      asynchronous=preview is None),
                    )  # fmt: skip
            else:
                status = 400
        return TemplateResponse(
            request,
            "admin/imports/importjob/import.html",
            self._context(request, title=_("Import a member file"), form=form, export_form=ExportForm()),
            status=status,
        )

    def confirm_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self._can_import(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponse(status=405)
        job = get_object_or_404(ImportJob, pk=job_id, status=ImportJob.Status.PENDING)
        url = reverse("admin:imports_importjob_change", args=[job.pk])
        if job.size > settings.IMPORT_ASYNC_THRESHOLD_BYTES:
            enqueue_on_commit("imports.tasks.run_import_job", job.pk)
            audit.record("members.import_queued", job, changes={"store": job.store.code})
            messages.info(request, _("The file is being imported in the background; this page shows its progress."))
            return HttpResponseRedirect(url)
        result = jobs.run_job(job.pk)
        if result is None:
            job.refresh_from_db()
            messages.error(request, job.message or _("The import did not run."))
        else:
            messages.success(
                request,
                _("Imported %(rows)s rows: %(created)s created, %(updated)s updated, %(merged)s merged, "
                  "%(rejected)s rejected, %(events)s consent events.")
                % {"rows": result.rows, "created": result.created, "updated": result.updated,
                   "merged": result.merged, "rejected": result.rejected, "events": result.consent_events},
            )  # fmt: skip
        return HttpResponseRedirect(url)

    def errors_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=job_id)
        if not job.errors_file:
            raise Http404("no rejected rows")
        response = FileResponse(
            job.errors_file.open("rb"), as_attachment=True, filename=f"import-{job.pk}-rejected.csv"
        )
        response["Content-Type"] = "text/csv; charset=utf-8"
        response["Cache-Control"] = "private, no-store"
        return response

    def export_view(self, request: HttpRequest) -> HttpResponse:
        # Contact points leave the system in this file: only staff who may see them.
        if not (request.user.has_perm("members.view_storemembership") and request.user.has_perm("members.view_pii")):
            raise PermissionDenied
        form = ExportForm(request.GET or None)
        if not form.is_valid():
            return HttpResponse(_("Choose a store to export."), status=400, content_type="text/plain; charset=utf-8")
        store = form.cleaned_data["store"]
        audit.record("members.exported", store, changes={"store": store.code})
        shown = StoreMembership.objects.filter(store=store).values_list("member_id", flat=True)
        audit_pii_view("imports_importjob_export", member_ids=shown, store=store.code)
        return csv_response(f"members-{store.code}.csv", EXPORT_COLUMNS, export_rows(store))

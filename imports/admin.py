"""Admin pages for member files: import (choose a store, upload, preview, confirm), the
import jobs with progress, counts and rejected rows, and the export of a store's members.

Small files are imported when confirmed; files over IMPORT_ASYNC_THRESHOLD_BYTES go to
Celery as an ImportJob. Every problem with a file is a page saying so (400), never a 500.
A failed job (its worker stopped, or an error) is retried from its page or the list.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import ReadOnlyAdminMixin
from cdp.admin_scope import scoped
from cdp.csvutil import csv_response
from cdp.enqueue import enqueue_on_commit
from consent.validation import latest_allowed
from members.admin import BRAND_CHECKLIST
from members.masking import audit_pii_view
from members.models import Store, StoreMembership

from . import file_templates, jobs, order_admin, retention
from .columns import EXPORT_COLUMNS
from .consent_time import ConsentTimeProblem, check_consent_time
from .models import ImportJob
from .readers import FileProblem, inspect
from .reasons import duration_in_words, localized
from .report import ERROR_HEADER, localized_rows, read_stored
from .resources import export_rows
from .service import scan

JOB_PAGE_ERRORS = 50  # rejected rows' problems shown on a job's page; the CSV has them all

ENCODINGS = [("", _("Detect")), ("utf-8", "UTF-8"), ("gb18030", "GB18030 / GBK"), ("utf-16", "UTF-16")]


class ImportForm(forms.Form):
    store = forms.ModelChoiceField(
        queryset=Store.objects.filter(is_active=True).select_related("brand"), label=_("store")
    )
    file = forms.FileField(label=_("member file (CSV or XLSX)"))
    encoding = forms.ChoiceField(choices=ENCODINGS, required=False, label=_("encoding"))
    consent_at = forms.DateTimeField(
        required=False,
        label=_("Consent answers collected at"),
        help_text=_(
            "For a file with consent columns but no consent_at (授权时间) column, e.g. a WeChat member export: "
            "when the answers were collected, e.g. 2026-03-01 10:00 (in %(zone)s unless it has an offset). "
            "Kept as evidence."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent_at"].help_text = self.fields["consent_at"].help_text % {"zone": settings.TIME_ZONE}

    def clean_consent_at(self) -> Any:
        value = self.cleaned_data.get("consent_at")
        if value is not None and value > latest_allowed(timezone.now()):
            raise forms.ValidationError(_("This time is in the future."), code="future")
        return value


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
        "updated", "merged", "rejected", "consent_events", "duration_shown", "consent_at", "sha256", "size",
        "encoding", "attempts", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
        "errors_link", "rejected_rows_shown",
    ]  # fmt: skip
    change_list_template = "admin/imports/importjob/change_list.html"
    change_form_template = "admin/imports/importjob/change_form.html"
    actions = ["retry_selected"]

    @admin.display(description=_("progress"))
    def progress_shown(self, job: ImportJob) -> str:
        return f"{job.progress}%"

    @admin.display(description=_("duration"))
    def duration_shown(self, job: ImportJob) -> str:
        if job.status != ImportJob.Status.DONE:
            return "–"
        return duration_in_words(job.seconds)

    @admin.display(description=_("why rows were rejected"))
    def rejected_rows_shown(self, job: ImportJob) -> str:
        """The first problems of the rejected rows, reasons in the reader's language."""
        if not job.errors_file:
            return "–"
        try:
            with job.errors_file.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
                shown = list(itertools.islice(localized_rows(read_stored(text)), JOB_PAGE_ERRORS))
        except OSError:
            return "–"
        head = format_html_join("", "<th>{}</th>", ((label,) for label in (_("row"), _("column"), _("value"),
                                                                             _("reason"))))  # fmt: skip
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((row, column, value, why) for row, column, value, why in shown),
        )  # fmt: skip
        more = ""
        if job.rejected and len(shown) >= JOB_PAGE_ERRORS:
            more = format_html('<p class="help">{}</p>', _("The first ones; the CSV lists them all."))
        return format_html('<table id="rejected-rows"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}',
                           head, body, more)  # fmt: skip

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
            path("<int:job_id>/cancel/", wrap(self.cancel_view), name="imports_importjob_cancel"),
            path("<int:job_id>/errors.csv", wrap(self.errors_view), name="imports_importjob_errors"),
            path("<int:job_id>/retry/", wrap(self.retry_view), name="imports_importjob_retry"),
            path("export/", wrap(self.export_view), name="imports_importjob_export"),
            path("template/<str:language>.<str:fmt>", wrap(self.template_view), name="imports_importjob_template"),
            *order_admin.urls(self),  # the order files page (imports.order_admin)
            *super().get_urls(),
        ]

    def _can_import(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imports.add_importjob")

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self._can_import(request)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        job = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if job is not None:
            extra["can_retry"] = job.status == ImportJob.Status.FAILED and bool(job.file) and self._can_import(request)
            extra["title"], extra["subtitle"] = str(job), None  # "莲花天猫旗舰店 · members-2026-03.csv"
        return super().change_view(request, object_id, form_url, extra)

    def retry_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self._can_import(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        get_object_or_404(scoped(ImportJob.objects.all(), request.user), pk=job_id)
        self._retry(request, [job_id])
        return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[job_id]))

    @admin.action(description=_("Retry the selected failed imports"), permissions=["import"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        self._retry(request, list(queryset.values_list("pk", flat=True)))

    def _retry(self, request: HttpRequest, job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                jobs.retry_job(job_id)  # the task is sent once this commits
            except jobs.RetryRefused as exc:
                self.message_user(request, f"#{job_id}: {exc}", messages.ERROR)
                continue
            job = ImportJob.objects.get(pk=job_id)
            if job.status == ImportJob.Status.DONE:  # in-process tasks (demo)
                text, level = _("Import #%(id)s ran again and finished."), messages.SUCCESS
            elif job.status == ImportJob.Status.FAILED:
                text, level = _("Import #%(id)s ran again and failed: %(reason)s"), messages.ERROR
            else:
                text = _("Import #%(id)s is queued again; rows already imported are not imported twice.")
                level = messages.INFO
            self.message_user(request, text % {"id": job.pk, "reason": job.message}, level)

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self._can_import(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None, initial={"store": request.GET.get("store")})
        form.fields["store"].queryset = scoped(form.fields["store"].queryset, request.user)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                store = form.cleaned_data["store"]
                job = jobs.create_job(
                    store=store, upload=form.cleaned_data["file"], encoding=form.cleaned_data["encoding"],
                    consent_at=form.cleaned_data["consent_at"],
                )  # fmt: skip
                try:
                    if job.size > settings.IMPORT_ASYNC_THRESHOLD_BYTES:
                        # Too big to preview row by row while the browser waits: check that
                        # the file is readable, count its rows, and let Celery do the rest.
                        info = inspect(Path(job.file.path), encoding=job.encoding or None)
                        found = scan(info)
                        check_consent_time(store=store, header=found.header, consent_at=job.consent_at,
                                           now=timezone.now())  # fmt: skip
                        preview, rows = None, found.rows
                    else:
                        preview = jobs.preview(job)
                        rows = preview.rows
                except FileProblem as exc:
                    jobs.discard(job, reason=str(exc))
                    form.add_error("consent_at" if isinstance(exc, ConsentTimeProblem) else "file", str(exc))
                    status = 400
                else:
                    errors = [(row, column, value, localized(why)) for row, column, value, why in
                              (preview.errors if preview else [])]  # fmt: skip
                    return TemplateResponse(
                        request,
                        "admin/imports/importjob/preview.html",
                        self._context(request, title=_("Check the import: %(job)s") % {"job": job}, job=job,
                                      preview=preview, errors=errors, rows=rows, asynchronous=preview is None,
                                      duration=duration_in_words(preview.seconds) if preview else ""),
                    )  # fmt: skip
            else:
                status = 400
        return TemplateResponse(
            request,
            "admin/imports/importjob/import.html",
            self._context(request, title=_("Import a member file"), form=form, export_form=ExportForm()),
            status=status,
        )

    def cancel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        """Cancel a preview: the uploaded file is deleted at once (imports.retention)."""
        if not self._can_import(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponse(status=405)
        job = get_object_or_404(scoped(ImportJob.objects.all(), request.user), pk=job_id)
        if retention.cancel_preview(job):
            messages.info(request, _("The import was cancelled and the file deleted."))
        else:
            messages.warning(request, _("This import is no longer waiting: it was not cancelled."))
        return HttpResponseRedirect(reverse("admin:imports_importjob_import"))

    def confirm_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not self._can_import(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponse(status=405)
        job = get_object_or_404(
            scoped(ImportJob.objects.all(), request.user), pk=job_id, status=ImportJob.Status.PENDING
        )
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
        job = get_object_or_404(scoped(ImportJob.objects.all(), request.user), pk=job_id)
        if not job.errors_file:
            raise Http404("no rejected rows")
        # The reasons in the reader's language (the file keeps message ids): rendered while
        # the response streams, so in the language of this request.
        language = translation.get_language()

        def rows() -> Any:
            with (
                job.errors_file.open("rb") as raw,
                io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
                translation.override(language),
            ):
                yield from localized_rows(read_stored(text))

        return csv_response(f"import-{job.pk}-rejected.csv", ERROR_HEADER, rows())

    def template_view(self, request: HttpRequest, language: str, fmt: str) -> HttpResponse:
        """A member file template (``imports.file_templates``): Chinese or English headers,
        CSV or XLSX, one example row."""
        if not self._can_import(request):
            raise PermissionDenied
        if language not in file_templates.LANGUAGES or fmt not in file_templates.FORMATS:
            raise Http404
        if fmt == "csv":
            body, content_type = file_templates.as_csv(language), "text/csv; charset=utf-8"
        else:
            body = file_templates.as_xlsx(language)
            content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(body, content_type=content_type)
        stem = _("member file template")  # outside the f-string, where makemessages finds it
        name = f"{stem}-{language}.{fmt}"
        response["Content-Disposition"] = content_disposition_header(True, name)
        return response

    def export_view(self, request: HttpRequest) -> HttpResponse:
        # Contact points leave the system in this file: only staff who may see them.
        if not (request.user.has_perm("members.view_storemembership") and request.user.has_perm("members.view_pii")):
            raise PermissionDenied
        form = ExportForm(request.GET or None)
        form.fields["store"].queryset = scoped(form.fields["store"].queryset, request.user)
        if not form.is_valid():
            return HttpResponse(_("Choose a store to export."), status=400, content_type="text/plain; charset=utf-8")
        store = form.cleaned_data["store"]
        audit.record("members.exported", store, changes={"store": store.code})
        shown = StoreMembership.objects.filter(store=store).values_list("member_id", flat=True)
        audit_pii_view("imports_importjob_export", member_ids=shown, store=store.code)
        return csv_response(f"members-{store.code}.csv", EXPORT_COLUMNS, export_rows(store))


from .platform_events import admin as platform_events_admin  # noqa: E402, F401 - registers its pages


def first_import_step(brand: Any) -> tuple[str, bool, str]:
    done = ImportJob.objects.filter(store__brand=brand, status=ImportJob.Status.DONE).exists()
    return str(_("First member file imported")), done, reverse("admin:imports_importjob_import")


if first_import_step not in BRAND_CHECKLIST:
    BRAND_CHECKLIST.append(first_import_step)

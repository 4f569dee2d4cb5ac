"""The compliance report in the admin: the form, the page, and its downloads (one CSV per
table, the whole report as PDF). Every download is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin_scope import scoped
from cdp.csvutil import csv_response
from cdp.db_router import replica_reads
from members.models import Brand

from .figures import compliance_report
from .tables import CSV_TABLES, csv_table, labelled, shown_tables

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
# The report reads across apps (consent, data requests, the audit log); its permission
# lives on insights' permission-only model. A string, so consent does not import insights.
PERMISSION = "insights.view_compliance_report"


class ReportForm(forms.Form):
    brand = forms.ModelChoiceField(label=_("brand"), queryset=Brand.objects.order_by("name"), empty_label=None)
    since = forms.DateField(label=_("from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(
        label=_("until (included)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    @classmethod
    def with_defaults(cls, query: QueryDict, user: Any) -> ReportForm:
        """Bound to the query string, with the first of ``user``'s brands and the last 30
        days filled in; only their brands can be chosen."""
        data = query.copy()
        today = timezone.localdate()
        brands = scoped(Brand.objects.order_by("name"), user)
        if not data.get("brand"):
            first = brands.values_list("pk", flat=True).first()
            data["brand"] = "" if first is None else str(first)
        data.setdefault("since", (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat())
        data.setdefault("until", today.isoformat())
        form = cls(data)
        form.fields["brand"].queryset = brands
        return form

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until:
            if since > until:
                self.add_error("until", _("The period ends before it starts."))
            elif (until - since).days > MAX_DAYS:
                self.add_error("since", _("At most three years at a time."))
        return cleaned


def _file_stem(data: dict[str, Any]) -> str:
    return f"compliance-report-{data['brand'].code}-{data['since']:%Y%m%d}-{data['until']:%Y%m%d}"


def _audit_download(data: dict[str, Any], fmt: str, table: str = "") -> None:
    audit.record(
        "consent.report_downloaded",
        data["brand"],
        changes={
            "format": fmt,
            "table": table,
            "since": data["since"].isoformat(),
            "until": data["until"].isoformat(),
        },
    )


def report_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The admin page (``context`` is the admin's). ``?format=csv&table=…`` downloads one
    table, ``?format=pdf`` the whole report."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = ReportForm.with_defaults(request.GET, request.user)
    fmt = request.GET.get("format", "")
    if fmt not in ("", "csv", "pdf"):
        raise Http404("no such format")
    table = request.GET.get("table", "by_purpose")
    if fmt == "csv" and table not in CSV_TABLES:
        raise Http404("no such table")
    report = None
    if form.is_valid():
        with replica_reads():  # counts over the ledger and requests: a replica's work
            report = compliance_report(**form.cleaned_data)
    if report is not None and fmt == "csv":
        header, rows = csv_table(report, table)
        _audit_download(form.cleaned_data, "csv", table)
        return csv_response(f"{_file_stem(form.cleaned_data)}-{table}.csv", header, rows)
    if report is not None and fmt == "pdf":
        from .pdf import render_pdf  # reportlab loads only when a PDF is asked for

        content = render_pdf(labelled(report))
        _audit_download(form.cleaned_data, "pdf")
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=f"{_file_stem(form.cleaned_data)}.pdf"
        )
        return response

    def link(**params: str) -> str:
        query = request.GET.copy()
        query.pop("table", None)
        for key, value in params.items():
            query[key] = value
        return "?" + query.urlencode()

    context = {
        **context,
        "title": _("Compliance report"),
        "form": form,
        "report": report and labelled(report),
        "tables": [
            {**table, "csv_url": link(format="csv", table=table["name"]) if table["csv"] else ""}
            for table in (shown_tables(report) if report is not None else [])
        ],
        "pdf_link": link(format="pdf"),
    }
    # A bad period (also on a download) is shown on the page with its message: 400, not a
    # file. The first visit, with nothing asked yet, is a page even when no brand exists.
    status = 400 if request.GET and not form.is_valid() else 200
    return TemplateResponse(request, "admin/insights/report.html", context, status=status)

"""The compliance report in the admin: the form, the page, and its downloads (one CSV per
table, the whole report as PDF). Every download is audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.csvutil import csv_response
from consent.models import Channel, Notice, SourceType
from members.models import Brand

from .figures import ACTIONS, compliance_report

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
# The report reads across apps (consent, data requests, the audit log); its permission
# lives on insights' permission-only model. A string, so consent does not import insights.
PERMISSION = "insights.view_compliance_report"

_REQUEST_KEYS = [
    "kind",
    "received",
    "status_received",
    "status_in_progress",
    "status_completed",
    "status_rejected",
    "answered",
    "answered_late",
    "median_days",
    "max_days",
    "open_at_end",
    "overdue_at_end",
]


def _request_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [*report["requests"]["by_kind"], report["requests"]["total"]]


# Tables offered as CSV: name → (header, keys of the rows, the rows of a report).
CSV_TABLES: dict[str, tuple[list[str], list[str], Callable[[dict[str, Any]], list[dict[str, Any]]]]] = {
    "by_purpose": (
        ["purpose", "channel", "source_type", *ACTIONS, "total"],
        ["purpose__code", "channel", "source_type", *ACTIONS, "total"],
        lambda r: r["by_purpose"],
    ),
    "sources": (
        ["source_type", "source_ref", "store", *ACTIONS, "total"],
        ["source_type", "source_ref", "store__code", *ACTIONS, "total"],
        lambda r: r["sources"],
    ),
    "withdrawals_by_week": (
        ["week", "starts", "withdrawn"],
        ["week", "starts", "withdrawn"],
        lambda r: r["withdrawals_by_week"],
    ),
    "by_notice": (
        ["notice_id", "kind", "purpose", "locale", "version", "in_force", *ACTIONS, "total"],
        [
            "notice_id",
            "notice__kind",
            "notice__purpose__code",
            "notice__locale",
            "notice__version",
            "in_force",
            *ACTIONS,
            "total",
        ],
        lambda r: r["by_notice"],
    ),
    "pending": (
        ["purpose", "channel", "pending", "expired", "oldest"],
        ["purpose__code", "channel", "count", "expired", "oldest"],
        lambda r: r["pending"],
    ),
    "notices": (
        ["notice_id", "kind", "purpose", "locale", "version", "title", "sha256", "published_at", "replaced_at"],
        ["id", "kind", "purpose__code", "locale", "version", "title", "sha256", "published_at", "replaced_at"],
        lambda r: r["notices"],
    ),
    "requests": (_REQUEST_KEYS, _REQUEST_KEYS, _request_rows),
    "pii_by_user": (
        ["user", "views", "member_records", "first", "last"],
        ["actor_label", "views", "members", "first", "last"],
        lambda r: r["pii"]["by_user"],
    ),
    "pii_latest": (
        ["when", "user", "view", "object_type", "object_id", "object", "member_records", "ip_address"],
        ["created_at", "actor_label", "view", "object_type", "object_id", "object_repr", "shown", "ip_address"],
        lambda r: r["pii"]["latest"],
    ),
}


def csv_table(report: dict[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one report table, for ``csvutil.csv_response``."""
    header, keys, rows = CSV_TABLES[table]
    return [str(h) for h in header], [[row[key] for key in keys] for row in rows(report)]


def labelled(report: dict[str, Any]) -> dict[str, Any]:
    """The report with display names for channels, sources and kinds (page and PDF)."""
    channels, sources, kinds = dict(Channel.choices), dict(SourceType.choices), dict(Notice.Kind.choices)
    for table in ("by_purpose", "sources", "pending"):
        for row in report[table]:
            row["channel_label"] = channels.get(row.get("channel", ""), "—")
            row["source_label"] = sources.get(row.get("source_type", ""), "")
    for row in report["by_notice"]:
        row["kind_label"] = kinds.get(row["notice__kind"], "—")
    for row in report["notices"]:
        row["kind_label"] = kinds.get(row["kind"], row["kind"])
    report["requests"]["total"]["kind_label"] = _("All requests")
    return report


class ReportForm(forms.Form):
    brand = forms.ModelChoiceField(label=_("brand"), queryset=Brand.objects.order_by("name"), empty_label=None)
    since = forms.DateField(label=_("from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(
        label=_("until (included)"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    @classmethod
    def with_defaults(cls, query: QueryDict) -> ReportForm:
        """Bound to the query string, with the first brand and the last 30 days filled in."""
        data = query.copy()
        today = timezone.localdate()
        if not data.get("brand"):
            first = Brand.objects.order_by("name").values_list("pk", flat=True).first()
            data["brand"] = "" if first is None else str(first)
        data.setdefault("since", (today - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat())
        data.setdefault("until", today.isoformat())
        return cls(data)

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
    form = ReportForm.with_defaults(request.GET)
    fmt = request.GET.get("format", "")
    if fmt not in ("", "csv", "pdf"):
        raise Http404("no such format")
    table = request.GET.get("table", "by_purpose")
    if fmt == "csv" and table not in CSV_TABLES:
        raise Http404("no such table")
    report = compliance_report(**form.cleaned_data) if form.is_valid() else None
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
        "csv_links": {name: link(format="csv", table=name) for name in CSV_TABLES},
        "pdf_link": link(format="pdf"),
    }
    # A bad period (also on a download) is shown on the page with its message: 400, not a
    # file. The first visit, with nothing asked yet, is a page even when no brand exists.
    status = 400 if request.GET and not form.is_valid() else 200
    return TemplateResponse(request, "admin/insights/report.html", context, status=status)

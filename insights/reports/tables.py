"""The tables of the compliance report, defined once for the page, the CSV files and the
PDF: which rows, which columns, each column's CSV name and raw value, and the heading and
text a person reads on the page and in the PDF.

A CSV cell is the raw value (codes, ISO times, numbers) so spreadsheets can sort and sum
it; the page and the PDF show labels and local times. Columns only one side needs say so
(``csv_only``, ``page_only``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import get_language_info, gettext
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Notice, SourceType

from .cells import text, when
from .figures import ACTIONS
from .integrity import integrity_rows

Row = dict[str, Any]
Report = dict[str, Any]


@dataclass(frozen=True)
class Column:
    csv: str  # the CSV header
    value: Callable[[Row], Any]  # what the CSV cell holds
    label: str | Promise = ""  # the heading on the page and in the PDF
    shown: Callable[[Row], Any] | None = None  # what page and PDF show (default: value)
    width: float = 1.0  # share of the PDF page width
    csv_only: bool = False
    page_only: bool = False
    code: bool = False  # set as code on the page (purpose codes, hashes)
    href: Callable[[Row], str] | None = None  # a link on the page
    alert: Callable[[Row], bool] | None = None  # stands out on the page (overdue requests)

    def display(self, row: Row) -> Any:
        return (self.shown or self.value)(row)


def key(name: str) -> Callable[[Row], Any]:
    return lambda row: row[name]


def column(name: str, label: str | Promise = "", **options: Any) -> Column:
    """A column whose CSV header and row key are ``name``."""
    return Column(csv=name, value=key(name), label=label, **options)


ACTION_LABELS = {
    "granted": _("granted"),
    "withdrawn": _("withdrawn"),
    "requested": _("requested"),
    "confirmed": _("confirmed"),
}


def action_columns(width: float = 1.0) -> list[Column]:
    """A count per ledger action (``ACTIONS``, the figures' keys)."""
    return [column(str(action), ACTION_LABELS[str(action)], width=width) for action in ACTIONS]


@dataclass(frozen=True)
class ReportTable:
    name: str  # the ``table=`` of its CSV download
    title: str | Promise
    rows: Callable[[Report], list[Row]]
    columns: list[Column]
    empty: str | Promise = ""  # shown instead of an empty table
    total: Callable[[Report], Row] | None = None  # a last row, set apart
    note: str | Promise = ""
    csv: bool = True  # offered as a CSV file

    def page_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.csv_only]

    def csv_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.page_only]

    def all_rows(self, report: Report) -> list[Row]:
        rows = list(self.rows(report))
        return [*rows, self.total(report)] if self.total else rows

    def csv_table(self, report: Report) -> tuple[list[str], list[list[Any]]]:
        columns = self.csv_columns()
        return [c.csv for c in columns], [[c.value(row) for c in columns] for row in self.all_rows(report)]

    def shown(self, report: Report) -> dict[str, Any]:
        """Headings and cells as the page and the PDF show them."""
        columns = self.page_columns()

        def cells(row: Row) -> list[dict[str, Any]]:
            return [
                {
                    "text": text(c.display(row)),
                    "raw": c.display(row),
                    "code": c.code,
                    "href": c.href(row) if c.href else "",
                    "alert": bool(c.alert and c.alert(row)),
                }
                for c in columns
            ]

        return {
            "name": self.name,
            "title": self.title,
            "csv": self.csv,
            "headers": [str(c.label) for c in columns],
            "widths": [c.width for c in columns],
            "rows": [cells(row) for row in self.rows(report)],
            "total": cells(self.total(report)) if self.total else None,
            "empty": str(self.empty),
            "note": str(self.note),
        }


def language_label(code: str | None) -> str | None:
    """A notice's language as people call it ("Simplified Chinese"), not its code."""
    if not code:
        return None
    try:
        return str(get_language_info(code)["name_translated"])
    except KeyError:
        return code


# The admin pages a ``pii.viewed`` row names (``members.masking.audit_pii_view``): the
# admin URL name of a model's page, ``<app>_<model>_<page>``.
PII_PAGES = {
    "change": _("page"),
    "changelist": _("list"),
    "export": _("export"),
    "download": _("download"),
    "csv": _("CSV file"),
    "scan": _("scanned form"),
}


def view_label(view: str) -> str:
    """``members_member_changelist`` as people read it: "Member: list"."""
    for model in apps.get_models():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if view.startswith(prefix):
            page = view.removeprefix(prefix)
            return f"{capfirst(model._meta.verbose_name)}: {PII_PAGES.get(page, page)}"
    return view


def labelled(report: dict[str, Any]) -> dict[str, Any]:
    """The report with display names for channels, sources, kinds, languages and the
    pages where personal data was viewed (page and PDF)."""
    channels, sources, kinds = dict(Channel.choices), dict(SourceType.choices), dict(Notice.Kind.choices)
    for table in ("by_purpose", "sources", "pending"):
        for row in report[table]:
            row["channel_label"] = channels.get(row.get("channel", ""), "—")
            row["source_label"] = sources.get(row.get("source_type", ""), "")
    for row in report["by_notice"]:
        row["kind_label"] = kinds.get(row["notice__kind"], "—")
        row["language_label"] = language_label(row["notice__locale"])
    for row in report["notices"]:
        row["kind_label"] = kinds.get(row["kind"], row["kind"])
        row["language_label"] = language_label(row["locale"])
    for row in report["pii"]["latest"]:
        page = view_label(row["view"]) if row["view"] else ""
        row["what"] = ": ".join(part for part in (page, row["object_repr"]) if part)
    report["requests"]["total"]["kind_label"] = _("All requests")
    return report


def _notice_url(row: Row) -> str:
    return reverse("admin:consent_notice_change", args=[row["id"]])


_REQUEST_STATUS = ["status_received", "status_in_progress", "status_completed", "status_rejected"]

TABLES: list[ReportTable] = [
    ReportTable(
        "totals",
        _("Totals"),
        lambda r: [r["totals"]],
        [
            *action_columns(width=1),
            column("total", _("all events")),
            column("pending", _("awaiting confirmation now"), width=1.6),
        ],
        csv=False,
    ),
    ReportTable(
        "notices",
        _("Notice versions in force during the period"),
        lambda r: r["notices"],
        [
            Column("notice_id", key("id"), csv_only=True),
            Column("kind", key("kind"), _("kind"), shown=key("kind_label"), width=1.4),
            Column("purpose", key("purpose__code"), _("purpose"), shown=key("purpose__name"), width=1.2),
            Column("locale", key("locale"), _("language"), shown=key("language_label"), width=1.1),
            Column(
                "version", key("version"), _("version"), shown=lambda n: f"v{n['version']}", width=0.6, href=_notice_url
            ),
            column("title", _("title"), width=2.6),
            Column("sha256", key("sha256"), "SHA-256", shown=lambda n: n["sha256"][:16] + "…", width=1.4, code=True),
            Column(
                "published_at", key("published_at"), _("published"), shown=lambda n: when(n["published_at"]), width=1.3
            ),
            Column(
                "replaced_at",
                key("replaced_at"),
                _("replaced"),
                shown=lambda n: when(n["replaced_at"]) if n["replaced_at"] else gettext("in force at the end"),
                width=1.3,
            ),
        ],
        empty=_("No notice published."),
    ),
    ReportTable(
        "by_purpose",
        _("By purpose, channel and source"),
        lambda r: r["by_purpose"],
        [
            Column(
                "purpose",
                key("purpose__code"),
                _("purpose"),
                shown=key("purpose__name"),
                width=1.8,
            ),
            Column("channel", key("channel"), _("channel"), shown=key("channel_label")),
            Column("source_type", key("source_type"), _("source"), shown=key("source_label"), width=1.4),
            *action_columns(),
            column("total", _("all"), width=0.8),
        ],
        empty=_("No consent events in this period."),
    ),
    ReportTable(
        "withdrawals_by_week",
        _("Withdrawals per week"),
        lambda r: r["withdrawals_by_week"],
        [
            column("week", _("ISO week")),
            Column("starts", key("starts"), _("starts"), shown=lambda row: when(row["starts"], "%Y-%m-%d")),
            column("withdrawn", _("withdrawn")),
        ],
    ),
    ReportTable(
        "pending",
        _("Double opt-ins awaiting confirmation now"),
        lambda r: r["pending"],
        [
            Column("purpose", key("purpose__code"), _("purpose"), shown=key("purpose__name"), width=1.5),
            Column("channel", key("channel"), _("channel"), shown=key("channel_label")),
            Column("pending", key("count"), _("pending")),
            column("expired", _("expired")),
            Column("oldest", key("oldest"), _("oldest request"), shown=lambda row: when(row["oldest"]), width=1.5),
        ],
        empty=_("None."),
    ),
    ReportTable(
        "by_notice",
        _("Events per notice version shown"),
        lambda r: r["by_notice"],
        [
            Column("notice_id", key("notice_id"), csv_only=True),
            Column("kind", key("notice__kind"), _("kind"), shown=key("kind_label"), width=1.4),
            Column(
                "purpose", key("notice__purpose__code"), _("purpose"), shown=key("notice__purpose__name"), width=1.2
            ),
            Column("locale", key("notice__locale"), _("language"), shown=key("language_label"), width=1.1),
            Column(
                "version",
                key("notice__version"),
                _("version"),
                shown=lambda row: f"v{row['notice__version']}" if row["notice__version"] else None,
                width=0.6,
            ),
            column("in_force", _("in force"), width=0.8),
            *action_columns(),
            column("total", csv_only=True),
        ],
        empty=_("No consent events in this period."),
    ),
    ReportTable(
        "sources",
        _("Busiest sources"),
        lambda r: r["sources"],
        [
            Column("source_type", key("source_type"), _("source"), shown=key("source_label"), width=1.3),
            column("source_ref", _("reference"), width=2.4),
            Column("store", key("store__code"), _("store"), width=1.2),
            *action_columns(),
            column("total", _("all"), width=0.8),
        ],
        empty=_("No consent events in this period."),
    ),
    ReportTable(
        "requests",
        _("Data requests and response times"),
        lambda r: r["requests"]["by_kind"],
        [
            Column("kind", key("kind"), _("kind"), shown=key("kind_label"), width=1.8),
            column("received", _("received in the period")),
            *[column(name, csv_only=True) for name in _REQUEST_STATUS],
            column("answered", _("answered in the period")),
            column("answered_late", _("answered late")),
            column("median_days", _("median days to answer")),
            column("max_days", _("longest (days)")),
            column("open_at_end", _("open at the end")),
            column("overdue_at_end", _("overdue at the end"), alert=lambda row: bool(row["overdue_at_end"])),
        ],
        total=lambda r: r["requests"]["total"],
        note=_(
            "Received: requests that arrived in the period. Answered: completed or refused in the period; "
            "late means after the due date. Open and overdue: not answered when the period ended."
        ),
    ),
    ReportTable(
        "pii_by_user",
        _("Who viewed full personal data (all brands)"),
        lambda r: r["pii"]["by_user"],
        [
            Column("user", key("actor_label"), _("staff account"), width=2),
            Column("views", key("views"), _("views")),
            Column(
                "member_records",
                key("members"),
                _("member records shown"),
                shown=lambda row: row["members"] or 0,
                width=1.4,
            ),
            Column("first", key("first"), _("first"), shown=lambda row: when(row["first"]), width=1.4),
            Column("last", key("last"), _("last"), shown=lambda row: when(row["last"]), width=1.4),
        ],
        empty=_("Nobody viewed full personal data in this period."),
    ),
    ReportTable(
        "pii_latest",
        _("The latest views of full personal data"),
        lambda r: r["pii"]["latest"],
        [
            Column(
                "when",
                key("created_at"),
                _("when"),
                shown=lambda row: when(row["created_at"], "%Y-%m-%d %H:%M:%S"),
                width=1.3,
            ),
            Column("user", key("actor_label"), _("staff account"), width=1.3),
            Column("view", key("view"), csv_only=True),
            Column("object_type", key("object_type"), csv_only=True),
            Column("object_id", key("object_id"), csv_only=True),
            Column("object", key("object_repr"), _("what"), shown=key("what"), width=3),
            Column("member_records", key("shown"), _("member records shown")),
            Column("ip_address", key("ip_address"), _("IP address"), width=1.2),
        ],
        empty=_("None."),
        note=_("Newest first. Staff work across brands, so this covers the whole platform."),
    ),
    ReportTable(
        "integrity",
        _("Ledger integrity (all brands)"),
        integrity_rows,
        [
            column("check", _("Check")),
            column("result", _("Result"), width=5, alert=lambda row: row["broken"]),
        ],
        csv=False,
    ),
]


BY_NAME: dict[str, ReportTable] = {table.name: table for table in TABLES}
CSV_TABLES: list[str] = [table.name for table in TABLES if table.csv]


def csv_table(report: Report, name: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one report table, for ``csvutil.csv_response``."""
    return BY_NAME[name].csv_table(report)


def shown_tables(report: Report) -> list[dict[str, Any]]:
    """Every table as the page and the PDF show it, in report order."""
    labelled(report)
    return [table.shown(report) for table in TABLES]

"""Reads of the ledger for people who answer to a regulator: the compliance report of a
brand and period (with its admin page and CSV tables), a person's consent timeline and
the rows of a ledger export.

Every figure is a grouped query (no Python loop over events), so the report costs the same
number of statements for a hundred events as for a hundred million; the database does the
counting. The period is about when people acted (``occurred_at``), the time the law cares
about; a late import of old consents changes the report of the period they belong to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber, TruncWeek
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand, Member

from .csvutil import csv_response
from .models import Action, Channel, Checkpoint, ConsentEvent, ConsentState, LedgerVerification, Notice, SourceType

DEFAULT_DAYS = 30
MAX_DAYS = 3 * 366
# The busiest sources listed; the rest are in the per-purpose totals anyway.
TOP_SOURCES = 100
ACTIONS = [Action.GRANTED, Action.WITHDRAWN, Action.REQUESTED, Action.CONFIRMED]


def period_bounds(since: dt.date | dt.datetime, until: dt.date | dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` as aware datetimes. Dates are whole local days and ``until`` is
    included: 1 to 31 March means up to, not including, 1 April 00:00."""

    def start_of(day: dt.date) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    start = since if isinstance(since, dt.datetime) else start_of(since)
    end = until if isinstance(until, dt.datetime) else start_of(until + dt.timedelta(days=1))
    return start, end


def _action_counts() -> dict[str, Any]:
    counts: dict[str, Any] = {str(a): Count("pk", filter=Q(action=a)) for a in ACTIONS}
    counts["total"] = Count("pk")
    return counts


def _weeks(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """Mondays of every ISO week the period touches (a few dozen at most)."""
    monday = timezone.localtime(start).date()
    monday -= dt.timedelta(days=monday.weekday())
    last = timezone.localtime(end - dt.timedelta(microseconds=1)).date()
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += dt.timedelta(days=7)
    return weeks


def _withdrawals_by_week(events: QuerySet[ConsentEvent], start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    found = {
        timezone.localtime(row["week"]).date() if isinstance(row["week"], dt.datetime) else row["week"]: row["count"]
        for row in events.filter(action=Action.WITHDRAWN)
        .annotate(week=TruncWeek("occurred_at"))
        .values("week")
        .annotate(count=Count("pk"))
        .order_by("week")
    }
    rows = []
    for monday in _weeks(start, end):
        year, week, _ = monday.isocalendar()
        rows.append({"week": f"{year}-W{week:02d}", "starts": monday, "withdrawn": found.get(monday, 0)})
    return rows


def _notices_in_force(brand: Brand, end: dt.datetime) -> list[dict[str, Any]]:
    """The newest version per kind × purpose × language published before the period ended.
    A window function, so NULL purposes (policies) group together as they should."""
    ranked = (
        Notice.objects.filter(brand=brand, published_at__lt=end)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("kind"), F("purpose_id"), F("locale")], order_by=F("version").desc()
            )
        )
        .filter(rank=1)
        .order_by("kind", "purpose__code", "locale")
    )
    return list(ranked.values("id", "kind", "purpose__code", "locale", "version", "title", "sha256", "published_at"))


def compliance_report(brand: Brand, since: dt.date | dt.datetime, until: dt.date | dt.datetime) -> dict[str, Any]:
    """Figures for ``brand`` between ``since`` and ``until`` (see ``period_bounds``).

    Keys: ``by_purpose`` (granted/withdrawn/requested/confirmed per purpose × channel ×
    source type), ``sources`` (the same per source reference, busiest first),
    ``withdrawals_by_week``, ``by_notice`` (events per notice version shown),
    ``pending`` (double opt-ins awaiting confirmation now), ``notices`` (versions in force
    at the end of the period), ``verification`` and ``checkpoint`` (the latest, ledger-wide),
    and ``totals``.
    """
    start, end = period_bounds(since, until)
    events = ConsentEvent.objects.filter(brand=brand, occurred_at__gte=start, occurred_at__lt=end)
    by_purpose = list(
        events.values("purpose__code", "purpose__name", "channel", "source_type")
        .annotate(**_action_counts())
        .order_by("purpose__code", "channel", "source_type")
    )
    sources = list(
        events.values("source_type", "source_ref", "store__code")
        .annotate(**_action_counts())
        .order_by("-total", "source_type", "source_ref")[:TOP_SOURCES]
    )
    in_force = _notices_in_force(brand, end)
    current_ids = {n["id"] for n in in_force}
    by_notice = list(
        events.values("notice_id", "notice__kind", "notice__purpose__code", "notice__locale", "notice__version")
        .annotate(**_action_counts())
        .order_by("notice__kind", "notice__purpose__code", "notice__locale", "notice__version")
    )
    for row in by_notice:
        row["in_force"] = row["notice_id"] in current_ids
    expired_before = timezone.now() - dt.timedelta(days=settings.DOUBLE_OPT_IN_MAX_AGE_DAYS)
    pending = list(
        ConsentState.objects.filter(brand=brand, action=Action.REQUESTED)
        .values("purpose__code", "channel")
        .annotate(
            count=Count("pk"),
            expired=Count("pk", filter=Q(occurred_at__lt=expired_before)),
            oldest=Min("occurred_at"),
        )
        .order_by("purpose__code", "channel")
    )
    totals = {str(a): sum(row[str(a)] for row in by_purpose) for a in ACTIONS}
    totals["total"] = sum(row["total"] for row in by_purpose)
    totals["pending"] = sum(row["count"] for row in pending)
    return {
        "brand": brand,
        "since": start,
        "until": end,
        "by_purpose": by_purpose,
        "sources": sources,
        "withdrawals_by_week": _withdrawals_by_week(events, start, end),
        "by_notice": by_notice,
        "pending": pending,
        "notices": in_force,
        "verification": LedgerVerification.objects.order_by("-started_at", "-pk").first(),
        "checkpoint": Checkpoint.objects.order_by("-pk").first(),
        "totals": totals,
    }


# Tables offered as CSV: name → (header, keys of the report rows, in the same order).
CSV_TABLES: dict[str, tuple[list[str], list[str]]] = {
    "by_purpose": (
        ["purpose", "channel", "source_type", *ACTIONS, "total"],
        ["purpose__code", "channel", "source_type", *ACTIONS, "total"],
    ),
    "sources": (
        ["source_type", "source_ref", "store", *ACTIONS, "total"],
        ["source_type", "source_ref", "store__code", *ACTIONS, "total"],
    ),
    "withdrawals_by_week": (["week", "starts", "withdrawn"], ["week", "starts", "withdrawn"]),
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
    ),
    "pending": (
        ["purpose", "channel", "pending", "expired", "oldest"],
        ["purpose__code", "channel", "count", "expired", "oldest"],
    ),
    "notices": (
        ["notice_id", "kind", "purpose", "locale", "version", "title", "sha256", "published_at"],
        ["id", "kind", "purpose__code", "locale", "version", "title", "sha256", "published_at"],
    ),
}


def csv_table(report: dict[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one report table, for ``csvutil.csv_response``."""
    header, keys = CSV_TABLES[table]
    return [str(h) for h in header], [[row[key] for key in keys] for row in report[table]]


def labelled(report: dict[str, Any]) -> dict[str, Any]:
    """The report with display names for channels, sources and actions (for the page)."""
    channels, sources, kinds = dict(Channel.choices), dict(SourceType.choices), dict(Notice.Kind.choices)
    for table in ("by_purpose", "sources", "pending"):
        for row in report[table]:
            row["channel_label"] = channels.get(row.get("channel", ""), "—")
            row["source_label"] = sources.get(row.get("source_type", ""), "")
    for row in report["by_notice"]:
        row["kind_label"] = kinds.get(row["notice__kind"], "—")
    for row in report["notices"]:
        row["kind_label"] = kinds.get(row["kind"], row["kind"])
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


def report_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The admin page (``context`` is the admin's); ``?format=csv&table=…`` downloads one table."""
    form = ReportForm.with_defaults(request.GET)
    report = compliance_report(**form.cleaned_data) if form.is_valid() else None
    if report is not None and request.GET.get("format") == "csv":
        table = request.GET.get("table", "by_purpose")
        if table not in CSV_TABLES:
            raise Http404("no such table")
        header, rows = csv_table(report, table)
        data = form.cleaned_data
        name = f"consent-report-{data['brand'].code}-{data['since']:%Y%m%d}-{data['until']:%Y%m%d}-{table}.csv"
        return csv_response(name, header, rows)

    def link(table: str) -> str:
        query = request.GET.copy()
        query["format"], query["table"] = "csv", table
        return "?" + query.urlencode()

    context = {
        **context,
        "title": _("Consent compliance report"),
        "form": form,
        "report": report and labelled(report),
        "csv_links": {table: link(table) for table in CSV_TABLES},
    }
    return TemplateResponse(request, "admin/consent/report.html", context)


# --- One person ------------------------------------------------------------------------------


def person(member_id: int) -> QuerySet[Member]:
    """Ids of the member and of the members merged into them (merges are one hop deep).
    An IN over this small subquery, rather than ``Q(member=…) | Q(member__merged_into=…)``,
    lets PostgreSQL semi-join on the events' member index instead of scanning events."""
    return Member.objects.filter(Q(pk=member_id) | Q(merged_into_id=member_id)).values("pk")


def member_timeline(member: Member, *, limit: int) -> dict[str, list[ConsentEvent]]:
    """``states``: the events behind the member's current ConsentState rows (what
    ``can_contact`` decides on); ``events``: the latest ``limit`` events by when they
    happened. One query however long the history: a window function ranks the person's
    events, and only the rows that are a state or among the latest come back."""
    rows = list(
        ConsentEvent.objects.filter(member_id__in=person(member.pk))
        .select_related("brand", "purpose", "notice")
        .annotate(
            is_state=Exists(ConsentState.objects.filter(member_id=member.pk, event_id=OuterRef("pk"))),
            recent=Window(RowNumber(), order_by=[F("occurred_at").desc(), F("id").desc()]),
        )
        .filter(Q(is_state=True) | Q(recent__lte=limit))
        .order_by("-occurred_at", "-id")
    )
    states = sorted((e for e in rows if e.is_state), key=lambda e: (e.brand.code, e.purpose.code, e.channel))
    return {"states": states, "events": [e for e in rows if e.recent <= limit]}


# --- Ledger export ---------------------------------------------------------------------------

LEDGER_CSV_HEADER = [
    "id", "member_id", "brand", "purpose", "channel", "action", "occurred_at", "recorded_at", "source_type",
    "source_ref", "store", "notice_id", "notice_version", "evidence", "by_guardian", "seq", "hash",
]  # fmt: skip
_LEDGER_CSV_VALUES = [
    "id", "member_id", "brand__code", "purpose__code", "channel", "action", "occurred_at", "recorded_at",
    "source_type", "source_ref", "store__code", "notice_id", "notice__version", "evidence", "by_guardian", "seq", "hash",
]  # fmt: skip
HIDDEN = "***"


def masked_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence for staff without ``members.view_pii``: the keys (so its presence shows),
    not the values (IP addresses, user agents, phone numbers)."""
    return dict.fromkeys(evidence or {}, HIDDEN)


def ledger_rows(queryset: QuerySet[ConsentEvent], *, evidence_values: bool) -> Iterator[list[Any]]:
    """Rows for LEDGER_CSV_HEADER, streamed from the database in chunks."""
    evidence_at = _LEDGER_CSV_VALUES.index("evidence")
    for values in queryset.values_list(*_LEDGER_CSV_VALUES).iterator(chunk_size=2000):
        row = list(values)
        row[evidence_at] = (row[evidence_at] or {}) if evidence_values else masked_evidence(row[evidence_at])
        yield row

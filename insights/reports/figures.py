"""The compliance report of a brand and period: what a privacy officer shows a regulator.

Sections: the notice versions in force during the period; consent events by purpose,
channel and source; withdrawals per week; double opt-ins awaiting confirmation; data
requests with their response times; the last ledger verification (the chains, and the
consent state checked against the ledger) and checkpoint; and who viewed full personal
data.

Every figure is a grouped query (no Python loop over events), so the report costs the same
number of statements for a hundred events as for a hundred million; the database does the
counting. The period is about when people acted (``occurred_at``), the time the law cares
about; a late import of old consents changes the report of the period they belong to.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Lead, TruncWeek
from django.utils import timezone

from cdp.models import AuditLog
from consent.models import Action, Checkpoint, ConsentEvent, ConsentState, LedgerVerification, Notice
from members.models import Brand
from privacy.models import DataSubjectRequest
from privacy.queries import requests_of_brand

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


def _notices_in_force(brand: Brand, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Every version per kind × purpose × language that was in force at some moment of
    the period: published before it ended and not replaced by a newer version before it
    started. ``replaced_at`` is when the next version (published before the period's end)
    took over; ``None`` means it was still in force when the period ended. A window
    function, so NULL purposes (policies) group together as they should."""
    rows = (
        Notice.objects.filter(brand=brand, published_at__lt=end)
        .annotate(
            replaced_at=Window(
                Lead("published_at"),
                partition_by=[F("kind"), F("purpose_id"), F("locale")],
                order_by=F("version").asc(),
            )
        )
        .filter(Q(replaced_at__isnull=True) | Q(replaced_at__gt=start))
        .order_by("kind", "purpose__code", "locale", "version")
    )
    found = list(
        rows.values(
            "id",
            "kind",
            "purpose__code",
            "purpose__name",
            "locale",
            "version",
            "title",
            "sha256",
            "published_at",
            "replaced_at",
        )
    )
    for row in found:
        row["in_force_at_end"] = row["replaced_at"] is None
    return found


def _days(delta: dt.timedelta) -> float:
    # + 0.0 turns the -0.0 of a request answered the instant it came (a copy of one's data)
    # into 0.0, which the report shows as "0.0", not "-0.0".
    return round(delta.total_seconds() / 86400, 1) + 0.0


NOT_SUMMED = {"kind", "kind_label", "median_days", "max_days"}


def _requests(brand: Brand, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Data-subject requests of the brand's people (``requests_of_brand``).

    Per kind: the requests received in the period, by their status now; those answered
    in the period (completed or refused, by ``completed_at``) with the median and longest
    time from receipt to answer in days and how many were answered after their due date;
    and those open and overdue when the period ended (received before the end and not
    answered by then). Three queries; the answer times of the period come back as one
    column to take their median portably (as many rows as requests the brand answered in
    the period, not as members).
    """
    requests = requests_of_brand(brand)
    statuses = DataSubjectRequest.Status
    received = {
        row["kind"]: row
        for row in requests.filter(received_at__gte=start, received_at__lt=end)
        .values("kind")
        .annotate(
            received=Count("pk"),
            **{f"status_{s}": Count("pk", filter=Q(status=s)) for s in statuses.values},
        )
    }
    not_answered_by_end = Q(completed_at__isnull=True, status__in=[statuses.RECEIVED, statuses.IN_PROGRESS]) | Q(
        completed_at__gte=end
    )
    open_at_end = {
        row["kind"]: row
        for row in requests.filter(not_answered_by_end, received_at__lt=end)
        .values("kind")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=end)))
    }
    took = ExpressionWrapper(F("completed_at") - F("received_at"), output_field=DurationField())
    answered: dict[str, list[tuple[dt.timedelta, bool]]] = {}
    for kind, duration, late in (
        requests.filter(completed_at__gte=start, completed_at__lt=end)
        .annotate(took=took, late=Case(When(completed_at__gt=F("due_at"), then=Value(1)), default=Value(0)))
        .values_list("kind", "took", "late")
        .order_by("kind", "took")
    ):
        answered.setdefault(kind, []).append((duration, bool(late)))

    def figures(kind: str, label: str) -> dict[str, Any]:
        rec, opened, done = received.get(kind, {}), open_at_end.get(kind, {}), answered.get(kind, [])
        times = [d for d, _ in done]
        return {
            "kind": kind,
            "kind_label": label,
            "received": rec.get("received", 0),
            **{f"status_{s}": rec.get(f"status_{s}", 0) for s in statuses.values},
            "answered": len(done),
            "answered_late": sum(1 for _, late in done if late),
            "median_days": _days(statistics.median(times)) if times else None,
            "max_days": _days(max(times)) if times else None,
            "open_at_end": opened.get("open", 0),
            "overdue_at_end": opened.get("overdue", 0),
        }

    rows = [figures(kind, str(label)) for kind, label in DataSubjectRequest.Kind.choices]
    every = [d for kind in answered for d, _ in answered[kind]]
    total: dict[str, Any] = {key: sum(row[key] for row in rows) for key in rows[0] if key not in NOT_SUMMED}
    total.update(
        kind="all",
        median_days=_days(statistics.median(every)) if every else None,
        max_days=_days(max(every)) if every else None,
    )
    return {"by_kind": rows, "total": total}


PII_VIEWED = "pii.viewed"
PII_LATEST = 50


def _pii_views(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Who saw full phone numbers and e-mail addresses in the period: per staff account the
    number of views and of member records shown (the ``count`` each row records: one for
    a member's page, the list's length for a list; a person seen twice counts twice), and
    the latest entries.
    Staff work across brands, so this section covers the whole platform."""
    views = AuditLog.objects.filter(action=PII_VIEWED, created_at__gte=start, created_at__lt=end)
    # ``changes.count`` is the number of members the page showed (``members.masking``
    # writes it on every row); a row without it that names one member counts one.
    shown = Coalesce(
        Cast(KT("changes__count"), IntegerField()),
        Case(When(~Q(object_id=""), then=Value(1)), default=Value(0)),
        output_field=IntegerField(),
    )
    by_user = list(
        views.values("actor_label", "actor_user_id")
        .annotate(views=Count("pk"), members=Sum(shown), first=Min("created_at"), last=Max("created_at"))
        .order_by("-views", "actor_label")
    )
    latest = list(
        views.annotate(shown=shown)
        .order_by("-created_at", "-id")
        .values(
            "created_at", "actor_label", "object_type", "object_id", "object_repr", "changes", "ip_address", "shown"
        )[:PII_LATEST]
    )
    for row in latest:
        changes = row.pop("changes") or {}
        row["view"] = str(changes.get("view", "")) if isinstance(changes, dict) else ""
    return {
        "by_user": by_user,
        "latest": latest,
        "views": sum(row["views"] for row in by_user),
        "members": sum(row["members"] or 0 for row in by_user),
        "limit": PII_LATEST,
    }


def compliance_report(brand: Brand, since: dt.date | dt.datetime, until: dt.date | dt.datetime) -> dict[str, Any]:
    """Figures for ``brand`` between ``since`` and ``until`` (see ``period_bounds``).

    Keys: ``by_purpose`` (granted/withdrawn/requested/confirmed per purpose × channel ×
    source type), ``sources`` (the same per source reference, busiest first),
    ``withdrawals_by_week``, ``by_notice`` (events per notice version shown),
    ``pending`` (double opt-ins awaiting confirmation now), ``notices`` (versions in force
    during the period), ``requests`` (data requests and response times), ``pii`` (who
    viewed full personal data), ``verification`` and ``checkpoint`` (the latest,
    ledger-wide), ``totals`` and ``generated_at``.
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
    notices = _notices_in_force(brand, start, end)
    current_ids = {n["id"] for n in notices if n["in_force_at_end"]}
    by_notice = list(
        events.values(
            "notice_id",
            "notice__kind",
            "notice__purpose__code",
            "notice__purpose__name",
            "notice__locale",
            "notice__version",
        )
        .annotate(**_action_counts())
        .order_by("notice__kind", "notice__purpose__code", "notice__locale", "notice__version")
    )
    for row in by_notice:
        row["in_force"] = row["notice_id"] in current_ids
    expired_before = timezone.now() - dt.timedelta(days=settings.DOUBLE_OPT_IN_MAX_AGE_DAYS)
    pending = list(
        ConsentState.objects.filter(brand=brand, action=Action.REQUESTED)
        .values("purpose__code", "purpose__name", "channel")
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
        "generated_at": timezone.now(),
        "by_purpose": by_purpose,
        "sources": sources,
        "withdrawals_by_week": _withdrawals_by_week(events, start, end),
        "by_notice": by_notice,
        "pending": pending,
        "notices": notices,
        "requests": _requests(brand, start, end),
        "pii": _pii_views(start, end),
        "verification": LedgerVerification.objects.order_by("-started_at", "-pk").first(),
        "checkpoint": Checkpoint.objects.order_by("-pk").first(),
        "totals": totals,
    }

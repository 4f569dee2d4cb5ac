"""Reads of one person's ledger and of ledger exports: the consent timeline in the admin
and the rows of the ledger CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from members.models import Member

from .models import ConsentEvent, ConsentState


def person(member_id: int) -> QuerySet[Member]:
    """Ids of the member and of the members merged into them (merges are one hop deep).
    An IN over this small subquery, rather than ``Q(member=…) | Q(member__merged_into=…)``,
    lets PostgreSQL semi-join on the events' member index instead of scanning events."""
    return Member.objects.filter(Q(pk=member_id) | Q(merged_into_id=member_id)).values("pk")


def member_timeline(
    member: Member, *, limit: int, brand_ids: frozenset[int] | None = None
) -> dict[str, list[ConsentEvent]]:
    """``states``: the events behind the member's current ConsentState rows (what
    ``can_contact`` decides on); ``events``: the latest ``limit`` events by when they
    happened; with ``brand_ids``, of those brands only (a brand's staff). One query
    however long the history: a window function ranks the person's events, and only the
    rows that are a state or among the latest come back."""
    events = ConsentEvent.objects.filter(member_id__in=person(member.pk))
    if brand_ids is not None:
        events = events.filter(brand_id__in=brand_ids)
    rows = list(
        events.select_related("brand", "purpose", "notice", "store")
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

"""Reads behind the privacy center pages. Each page costs a fixed number of queries,
whatever the number of brands, purposes, events or orders."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, QuerySet, Sum
from django.utils import timezone

from consent import texts
from consent.models import (
    NO_CHANNEL,
    Action,
    Channel,
    ConsentEvent,
    ConsentState,
    Notice,
    Preference,
    Purpose,
)
from members.models import Brand, Identity, Member, Order, StoreMembership

from .access import people_q
from .models import DataSubjectRequest


def memberships(member: Member) -> list[StoreMembership]:
    return list(
        StoreMembership.objects.filter(member_id=member.pk)
        .select_related("store__brand")
        .order_by("store__brand__name", "store__name")
    )


def identities(member: Member) -> list[Identity]:
    return list(Identity.objects.filter(member_id=member.pk).select_related("store").order_by("kind", "value"))


def orders_by_brand(member: Member) -> dict[int, dict[str, Any]]:
    rows = (
        Order.objects.filter(member_id=member.pk)
        .values("store__brand_id")
        .annotate(count=Count("id"), total=Sum("amount"), last=Max("placed_at"))
    )
    return {row["store__brand_id"]: row for row in rows}


def brands_holding_data(member: Member, held: list[StoreMembership]) -> list[Brand]:
    """Brands with a membership, a consent record or preferences of the person."""
    ids = {m.store.brand_id for m in held}
    ids |= set(ConsentState.objects.filter(member_id=member.pk).values_list("brand_id", flat=True).distinct())
    ids |= set(Preference.objects.filter(member_id=member.pk).values_list("brand_id", flat=True))
    return list(Brand.objects.filter(pk__in=ids).order_by("name"))


@dataclass
class Switch:
    purpose: Purpose
    channel: str
    state: str | None  # the current action, or None (never asked: off)
    notice: Notice | None
    name: str = ""  # the purpose's name and description in the page's language (consent.texts)
    description: str = ""

    @property
    def is_on(self) -> bool:
        return self.state in (Action.GRANTED, Action.CONFIRMED)

    @property
    def is_pending(self) -> bool:
        return self.state == Action.REQUESTED

    @property
    def channel_label(self) -> str:
        return str(Channel(self.channel).label) if self.channel in Channel.values else ""

    @property
    def key(self) -> str:
        return f"{self.purpose.pk}-{self.channel or 'none'}"


@dataclass
class BrandBoard:
    brand: Brand
    regular: list[Switch] = field(default_factory=list)
    separate: list[Switch] = field(default_factory=list)


def consent_boards(member: Member, brands: list[Brand], locale: str) -> list[BrandBoard]:
    """Per brand, every active purpose × channel with its state and the notice shown."""
    brand_ids = [b.pk for b in brands]
    purposes = list(Purpose.objects.filter(brand_id__in=brand_ids, is_active=True).order_by("brand_id", "code"))
    states = {
        (s["purpose_id"], s["channel"]): s["action"]
        for s in ConsentState.objects.filter(member_id=member.pk, brand_id__in=brand_ids).values(
            "purpose_id", "channel", "action"
        )
    }
    notices: dict[int, list[Notice]] = defaultdict(list)
    for notice in Notice.objects.filter(brand_id__in=brand_ids).defer("body", "change_summary"):
        notices[notice.brand_id].append(notice)
    by_brand = {b.pk: BrandBoard(brand=b) for b in brands}
    orders = {b.pk: b.language_order(locale) for b in brands}
    for purpose in purposes:
        board = by_brand[purpose.brand_id]
        purpose.brand = board.brand  # loaded already: no query per purpose
        # The same choice as services.current_notice: the text recorded is the text shown.
        shown = texts.notice_to_show(notices[purpose.brand_id], purpose.pk, orders[purpose.brand_id])
        name = texts.localized(purpose, "name", board.brand, locale)
        description = texts.localized(purpose, "description", board.brand, locale)
        for channel in purpose.channels or [NO_CHANNEL]:
            switch = Switch(purpose, channel, states.get((purpose.pk, channel)), shown, name, description)
            (board.separate if purpose.separate_consent else board.regular).append(switch)
    return [by_brand[b.pk] for b in brands]


def withdrawals_of(request: DataSubjectRequest) -> list[ConsentEvent]:
    """The withdrawals a "withdraw everything" request recorded (their evidence names it;
    they were recorded after it was completed, by ``rights.withdraw_all``)."""
    found = ConsentEvent.objects.filter(
        member_id=request.member_id, action=Action.WITHDRAWN, recorded_at__gte=request.completed_at
    ).order_by("pk")
    return [e for e in found if e.evidence.get("withdraw_all_request") == request.pk]


def own_event(member: Member, event_id: int) -> ConsentEvent | None:
    return (
        ConsentEvent.objects.filter(people_q(member), pk=event_id)
        .select_related("brand", "purpose", "notice", "store", "member")
        .first()
    )


def requests(member: Member) -> list[DataSubjectRequest]:
    return list(DataSubjectRequest.objects.filter(member_id=member.pk).order_by("-received_at", "-id")[:50])


def own_request(member: Member, request_id: int) -> DataSubjectRequest | None:
    return DataSubjectRequest.objects.filter(member_id=member.pk, pk=request_id).first()


def preferences(member: Member) -> dict[int, Preference]:
    return {p.brand_id: p for p in Preference.objects.filter(member_id=member.pk)}


def consented_channels(member: Member) -> dict[int, set[str]]:
    """Brand id → the channels the person may be contacted on for some purpose now (a
    standing grant or confirmation, or a pending e-mail confirmation): what the
    preferences page offers. One query."""
    rows = (
        ConsentState.objects.filter(people_q(member), action__in=[Action.GRANTED, Action.CONFIRMED, Action.REQUESTED])
        .exclude(channel="")
        .values_list("brand_id", "channel")
        .distinct()
    )
    found: dict[int, set[str]] = {}
    for brand_id, channel in rows:
        found.setdefault(brand_id, set()).add(channel)
    return found


def requests_of_brand(brand: Brand | int) -> QuerySet[DataSubjectRequest]:
    """The data requests a brand must answer: those of people who are members of one of its
    stores. A person with memberships in two brands appears in both brands' queues, since
    each brand is a controller of its own copy. One definition for the queue, the dashboard
    and the compliance report."""
    brand_id = brand.pk if isinstance(brand, Brand) else brand
    held = StoreMembership.objects.filter(member_id=OuterRef("member_id"), store__brand_id=brand_id)
    return DataSubjectRequest.objects.filter(Exists(held))


def open_requests(queryset: QuerySet[DataSubjectRequest] | None = None) -> QuerySet[DataSubjectRequest]:
    """Requests received or in progress (of ``queryset``, e.g. ``requests_of_brand``)."""
    qs = DataSubjectRequest.objects.all() if queryset is None else queryset
    return qs.filter(status__in=DataSubjectRequest.OPEN)


def overdue(queryset: QuerySet[DataSubjectRequest] | None = None) -> QuerySet[DataSubjectRequest]:
    """Open requests past their deadline (``due_at`` moves when a deadline is extended)."""
    return open_requests(queryset).filter(due_at__lt=timezone.now())


def due_soon(queryset: QuerySet[DataSubjectRequest] | None = None) -> QuerySet[DataSubjectRequest]:
    """Open requests not yet overdue whose deadline is within ``DASHBOARD_DUE_SOON_DAYS`` (as the dashboard)."""
    now = timezone.now()
    return open_requests(queryset).filter(
        due_at__gte=now, due_at__lt=now + dt.timedelta(days=settings.DASHBOARD_DUE_SOON_DAYS)
    )

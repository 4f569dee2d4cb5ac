"""Reads behind the privacy center pages. Each page costs a fixed number of queries,
whatever the number of brands, purposes, events or orders."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum
from django.utils import formats, timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from consent import texts
from consent.models import (
    NO_CHANNEL,
    Action,
    Channel,
    ConsentEvent,
    ConsentState,
    DataUsage,
    Notice,
    Preference,
    Purpose,
)
from consent.queries import stood_before
from members.models import Brand, Identity, Member, Order, Store, StoreMembership

from .access import people_q
from .models import DataSubjectRequest

# Entries per history page, for each of its two lists ("Older …" for more). About 180 px
# each on a 360 px phone: 25 are a long scroll already, and keep the page under 20 ms
# server time for a person with hundreds of events (bench/privacy/run.py).
HISTORY_LIMIT = 25


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


def _known(member: Member, qs: QuerySet[Any], ids: set[int]) -> dict[int, Any]:
    """``qs.in_bulk(ids)``, remembered on this request's ``member`` per model, so the
    history's two lists fetch a brand or purpose once between them."""
    memo = member.__dict__.setdefault("_known", {}).setdefault(qs.model, {})
    missing = ids - memo.keys()
    if missing:
        memo.update(qs.in_bulk(missing))
    return memo


def events(member: Member, *, before: int | None = None, limit: int = HISTORY_LIMIT) -> list[ConsentEvent]:
    """The person's newest ``limit`` events (older than ``before``), with their brand,
    purpose, store and notice. Those are a handful per person: fetched once each rather
    than joined into every row (a joined row builds four model instances; at 50 rows that
    was most of the history page's time). A notice's text is not read: only its title and
    version are shown."""
    qs = ConsentEvent.objects.filter(people_q(member)).defer("hash", "prev_hash")
    if before:
        qs = qs.filter(pk__lt=before)
    found = list(qs.order_by("-id")[:limit])
    brands = _known(member, Brand.objects.all(), {e.brand_id for e in found})
    purposes = _known(member, Purpose.objects.defer("description", *_DESCRIPTIONS), {e.purpose_id for e in found})
    stores = Store.objects.only("name", "brand_id").in_bulk({e.store_id for e in found if e.store_id})
    notices = Notice.objects.only("title", "version", "locale", "brand_id").in_bulk(
        {e.notice_id for e in found if e.notice_id}
    )
    for e in found:
        e.brand, e.purpose = brands[e.brand_id], purposes[e.purpose_id]
        e.store = stores.get(e.store_id) if e.store_id else None
        e.notice = notices.get(e.notice_id) if e.notice_id else None
    return found


_DESCRIPTIONS = [f"description_{code.replace('-', '_')}" for code, _label in settings.LANGUAGES]

# What a choice stood at, in the words of the switches.
STATE_WORDS = {
    Action.GRANTED: pgettext_lazy("switch state", "on"),
    Action.CONFIRMED: pgettext_lazy("switch state", "on"),
    Action.REQUESTED: pgettext_lazy("switch state", "waiting for confirmation"),
    Action.WITHDRAWN: pgettext_lazy("switch state", "off"),
}


def _choice_key(e: ConsentEvent) -> tuple[int, int, str]:
    return (e.brand_id, e.purpose_id, e.channel)


def states_before(member: Member, events_: list[ConsentEvent]) -> dict[tuple[int, int, str], str]:
    """Per choice on the page, the action it stood at before the page's oldest event of
    it: one query (a subquery per choice, at most one per purpose and channel shown), so
    the first change on a page reads "off → on" or "on → off" like the others."""
    oldest: dict[tuple[int, int, str], int] = {}
    for e in events_:
        oldest[_choice_key(e)] = min(e.pk, oldest.get(_choice_key(e), e.pk))
    if not oldest:
        return {}
    rows = (
        ConsentEvent.objects.filter(pk__in=oldest.values())
        .annotate(previous=stood_before(people_q(member), "action"))
        .values_list("brand_id", "purpose_id", "channel", "previous")
    )
    return {(b, p, c): action for b, p, c, action in rows if action}


def timeline(
    events_: list[ConsentEvent], before: dict[tuple[int, int, str], str] | None = None
) -> list[dict[str, Any]]:
    """The history rows as plain text, built once: labels translated once per value, links
    formatted from one reversed pattern. Rendering 50 rows this way costs a few ms.

    Each row reads as a change of one choice, "from → to": what it stood at before is the
    same choice's previous row (the list is newest first), else ``before``
    (``states_before``), else off (no event is no consent)."""
    from django.urls import reverse

    actions = {value: str(label) for value, label in Action.choices}
    channels = {value: str(label) for value, label in Channel.choices}
    words = {value: str(label) for value, label in STATE_WORDS.items()}
    receipt = reverse("privacy:receipt", args=[0]).replace("/0/", "/{}/")
    receipt_json = reverse("privacy:receipt_json", args=[0]).replace("/0/", "/{}/")
    stood = dict(before or {})
    changed_as = gettext("%(choice)s: %(was)s → %(now)s")
    stays_as = gettext("%(choice)s: stays %(now)s")
    notice_as = gettext("Notice: %(title)s, version %(version)s")
    rows = []
    for e in reversed(events_):  # oldest first, so each row knows the one before it
        was = stood.get(_choice_key(e), Action.WITHDRAWN)
        stood[_choice_key(e)] = e.action
        when = timezone.localtime(e.occurred_at)
        purpose = texts.localized(e.purpose, "name", e.brand)
        channel = channels.get(e.channel, "")
        choice = f"{purpose} · {channel}" if channel else purpose
        brand = e.brand.public_name
        now = words.get(e.action, e.action)
        rows.append(
            {
                "id": e.pk,
                "when": when,
                "time": formats.time_format(when, "TIME_FORMAT"),
                "day": when.date(),
                "action": actions.get(e.action, e.action),
                "brand": brand,
                "purpose": purpose,
                "channel": channel,
                "choice": choice,
                "was": words.get(was, was),
                "now": now,
                "changed": words.get(was) != words.get(e.action),
                # "莲花美妆 · Marketing · SMS: on → off", built here: a blocktranslate per row costs more.
                "change": (changed_as if words.get(was) != words.get(e.action) else stays_as)
                % {"choice": choice, "was": words.get(was, was), "now": now},
                "undo": bool(e.evidence.get("undo_of")) if isinstance(e.evidence, dict) else False,
                "source": texts.source_in_words(e.source_type, brand, e.store.name if e.store_id else ""),
                "notice": e.notice,
                "notice_line": notice_as % {"title": e.notice.title, "version": e.notice.version}
                if e.notice_id
                else "",
                "receipt_url": receipt.format(e.pk),
                "json_url": receipt_json.format(e.pk),
            }
        )
    rows.reverse()
    return rows


def by_day(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (newest first) grouped under their day in the person's time zone."""
    days: list[dict[str, Any]] = []
    for row in rows:
        if not days or days[-1]["day"] != row["day"]:
            days.append({"day": row["day"], "rows": []})
        days[-1]["rows"].append(row)
    return days


def withdrawals_of(request: DataSubjectRequest) -> list[ConsentEvent]:
    """The withdrawals a "withdraw everything" request recorded (their evidence names it;
    they were recorded after it was completed, by ``rights.withdraw_all``)."""
    found = ConsentEvent.objects.filter(
        member_id=request.member_id, action=Action.WITHDRAWN, recorded_at__gte=request.completed_at
    ).order_by("pk")
    return [e for e in found if e.evidence.get("withdraw_all_request") == request.pk]


# What each kind of use meant for the person, in their words (not the internal reference).
USAGE_CONTEXTS = {
    "segment_export": _("You were on a list of people to contact in a campaign."),
    "api_segment_read": _("The brand's systems read your details to contact you in a campaign."),
    "opt_in_mail": _("We e-mailed you a link to confirm that you want e-mails."),
}


def _usage_headline(row: DataUsage, purpose: str, channel: str) -> str:
    """ "Exported for: SMS campaign “Double 11 presale” by 莲花 Lotus": the use in words,
    from what the row holds (never its internal reference, "export:4")."""
    brand = row.brand.public_name
    if row.campaign and channel:
        use = gettext("%(channel)s campaign “%(campaign)s” by %(brand)s") % {
            "channel": channel, "campaign": row.campaign, "brand": brand,
        }  # fmt: skip
    elif row.campaign:
        use = gettext("Campaign “%(campaign)s” by %(brand)s") % {"campaign": row.campaign, "brand": brand}
    else:
        what = f"{purpose} · {channel}" if channel else purpose
        use = gettext("%(purpose)s, by %(brand)s") % {"purpose": what, "brand": brand}
    if row.context_type == "api_segment_read":
        return gettext("Read by the brand's systems for: %(use)s") % {"use": use}
    if row.context_type == "opt_in_mail":
        return gettext("Confirmation e-mail from %(brand)s") % {"brand": brand}
    return gettext("Exported for: %(use)s") % {"use": use}


def usage(member: Member, *, before: int | None = None, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The data usage log as plain rows (see ``timeline``), newest first; with ``before``
    (a row id of the person's), the rows after that one in this order."""
    channels = {value: str(label) for value, label in Channel.choices}
    qs = DataUsage.objects.filter(people_q(member))
    if before:
        anchor = qs.filter(pk=before).values_list("occurred_at", flat=True).first()
        if anchor is not None:
            qs = qs.filter(Q(occurred_at__lt=anchor) | Q(occurred_at=anchor, pk__lt=before))
    rows = list(qs.order_by("-occurred_at", "-id")[:limit])
    # A person's uses name a handful of brands and purposes: fetched once each, not per row.
    brands = _known(member, Brand.objects.all(), {row.brand_id for row in rows})
    purposes = _known(member, Purpose.objects.defer("description", *_DESCRIPTIONS), {row.purpose_id for row in rows})
    this_year = timezone.localdate().year
    found = []
    for row in rows:
        row.brand, row.purpose = brands[row.brand_id], purposes[row.purpose_id]
        purpose = texts.localized(row.purpose, "name", row.brand)
        channel = channels.get(row.channel, "")
        found.append(
            {
                "id": row.pk,
                "when": row.occurred_at,
                "this_year": timezone.localtime(row.occurred_at).year == this_year,
                "headline": _usage_headline(row, purpose, channel),
                "brand": row.brand.public_name,
                "purpose": purpose,
                "channel": channel,
                "what": USAGE_CONTEXTS.get(row.context_type, ""),
                "campaign": row.campaign,
            }
        )
    return found


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

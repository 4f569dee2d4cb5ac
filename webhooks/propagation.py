"""Did every receiver get the withdrawal? (issue 25 item 10)

For one consent event, each of the brand's receivers that existed when it was recorded:
its webhook subscriptions to ``consent.changed`` (the delivery, found by its derived event
id: acknowledged with a 2xx, on its way, or failed for good) and its consent file feeds
(the file set whose range holds the event, or waiting for the next one). Shown on the
event's receipt (the admin's and the person's own) and, for withdrawals not yet
acknowledged everywhere, on the privacy officer's page (``webhooks.admin``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Action, ConsentEvent

from .models import ConsentFile, ConsentFileFeed, Delivery, EventType, Subscription
from .services import derived_event_id

ACKNOWLEDGED, ON_ITS_WAY, FAILED, NOT_SENT, IN_FILE, NEXT_FILE = (
    "acknowledged", "on_its_way", "failed", "not_sent", "in_file", "next_file",
)  # fmt: skip
STATE_LABELS = {
    ACKNOWLEDGED: _("received"),
    ON_ITS_WAY: _("on its way"),
    FAILED: _("failed"),
    NOT_SENT: _("not sent"),
    IN_FILE: _("in the daily file"),
    NEXT_FILE: _("in the next daily file"),
}
DONE = (ACKNOWLEDGED, IN_FILE)


@dataclass(frozen=True)
class Passed:
    receiver: str  # the subscription's description (else its host), or the feed's name
    kind: str  # "webhook" or "file"
    state: str
    at: dt.datetime | None

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])

    @property
    def done(self) -> bool:
        return self.state in DONE


def receiver_name(subscription: Subscription) -> str:
    return subscription.description or urlsplit(subscription.url).hostname or subscription.url


def _state(delivery: Delivery | None) -> tuple[str, dt.datetime | None]:
    if delivery is None:
        return NOT_SENT, None
    if delivery.status == Delivery.Status.SUCCEEDED:
        return ACKNOWLEDGED, delivery.delivered_at
    if delivery.status == Delivery.Status.DEAD:
        return FAILED, delivery.last_attempt_at
    return ON_ITS_WAY, delivery.last_attempt_at or delivery.created_at


def passed_on(events: list[ConsentEvent]) -> dict[int, list[Passed]]:
    """Event id → where it went. Four queries for any number of events of any brands."""
    if not events:
        return {}
    brands = {event.brand_id for event in events}
    subscriptions = [
        s
        for s in Subscription.objects.filter(brand_id__in=brands).order_by("pk")
        if EventType.CONSENT_CHANGED in s.events
    ]
    ids = {(event.pk, s.pk): derived_event_id(f"{EventType.CONSENT_CHANGED}:{event.pk}", event.brand_id)
           for event in events for s in subscriptions if s.brand_id == event.brand_id}  # fmt: skip
    deliveries = {
        (d.subscription_id, d.event_id): d
        for d in Delivery.objects.filter(event_id__in=set(ids.values()), subscription__in=subscriptions)
    }
    feeds = list(ConsentFileFeed.objects.filter(brand_id__in=brands).order_by("pk"))
    low, high = min(event.pk for event in events), max(event.pk for event in events)
    files = list(
        ConsentFile.objects.filter(feed__in=feeds, up_to_event_id__gte=low, after_event_id__lt=high).order_by("number")
    )
    result: dict[int, list[Passed]] = {}
    for event in events:
        rows = []
        for s in subscriptions:
            if s.brand_id != event.brand_id or s.created_at > event.recorded_at:
                continue
            delivery = deliveries.get((s.pk, ids[(event.pk, s.pk)]))
            if delivery is None and not s.is_active:
                continue  # switched off, and nothing was made for it
            state, at = _state(delivery)
            rows.append(Passed(receiver_name(s), "webhook", state, at))
        for feed in feeds:
            if feed.brand_id != event.brand_id or feed.created_at > event.recorded_at:
                continue
            if feed.store_id is not None and feed.store_id != event.store_id:
                continue  # a store's feed carries that store's events
            held = next((f for f in files if f.feed_id == feed.pk and f.after_event_id < event.pk <= f.up_to_event_id),
                        None)  # fmt: skip
            if held is not None:
                rows.append(Passed(feed.name, "file", IN_FILE, held.created_at))
            elif feed.is_active:
                rows.append(Passed(feed.name, "file", NEXT_FILE, None))
        result[event.pk] = rows
    return result


def receipt_rows(event: ConsentEvent) -> list[Passed]:
    """For the receipt (``consent.receipts.PROPAGATION``)."""
    return passed_on([event]).get(event.pk, [])


SCANNED = 1000


def unconfirmed_withdrawals(
    *, brand_ids: frozenset[int] | None, days: int = 30, limit: int = 200
) -> list[tuple[ConsentEvent, list[Passed]]]:
    """Withdrawals of the last ``days`` (the newest ``SCANNED``) that some receiver has not
    acknowledged yet, or lost for good: newest first, at most ``limit``. The privacy
    officer's list."""
    since = timezone.now() - dt.timedelta(days=days)
    withdrawals = ConsentEvent.objects.filter(action=Action.WITHDRAWN, recorded_at__gte=since)
    if brand_ids is not None:
        withdrawals = withdrawals.filter(brand_id__in=brand_ids)
    # The newest SCANNED withdrawals are looked at (five queries whatever their number).
    recent = list(withdrawals.select_related("brand", "purpose", "member").order_by("-recorded_at", "-pk")[:SCANNED])
    where = passed_on(recent)
    pending = [(event, where[event.pk]) for event in recent if any(not p.done for p in where[event.pk])]
    return pending[:limit]

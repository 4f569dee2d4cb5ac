"""Webhook writes: subscribe, unsubscribe, publish an event, deliver, redeliver."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue_on_commit
from members.models import Brand

from . import transport
from .models import Delivery, DeliveryAttempt, EventType, MemberSequence, Subscription
from .signing import SIGNATURE_HEADER, new_secret, sign, standard_headers

log = logging.getLogger(__name__)


class WebhookError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- Subscriptions ------------------------------------------------------------------------


def check_url(url: str) -> None:
    """http(s) only, and unless ``WEBHOOK_ALLOW_PRIVATE_URLS`` is on, https to a host that
    resolves to public addresses only (``webhooks.transport``): a subscription must not
    turn the platform into a scanner of its own network. Checked again before every
    attempt, since DNS can change."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    try:
        if allow_private:
            transport.split(url)  # the receiver may be anywhere: no need to resolve it now
        else:
            transport.resolve(url, allow_private=False)
    except transport.TargetRefused as exc:
        raise WebhookError("url", exc.message) from None


@transaction.atomic
def create_subscription(
    *, brand: Brand, url: str, events: list[str], description: str = "", actor: audit.Actor | None = None
) -> tuple[Subscription, str]:
    """Subscribe ``url`` to ``events`` of ``brand``; returns the subscription and its
    signing secret (shown to the subscriber once). ``actor`` (default: whoever acts now)
    is kept as who subscribed."""
    events = list(dict.fromkeys(events))
    unknown = [e for e in events if e not in EventType.values]
    if unknown or not events:
        raise WebhookError("events", f"choose from {', '.join(EventType.values)}")
    check_url(url)
    secret = new_secret()
    subscription = Subscription.objects.create(
        brand=brand,
        url=url,
        events=events,
        secret=secret,
        description=description[:200],
        created_by=(actor or audit.current_actor()).label[:150],
    )
    audit.record("webhook.subscribed", subscription, changes={"url": url, "events": events})
    transaction.on_commit(lambda: forget_subscribers(brand.pk))
    return subscription, secret


@transaction.atomic
def delete_subscription(subscription: Subscription) -> None:
    """Stop deliveries to a subscription; its delivery log stays."""
    Subscription.objects.filter(pk=subscription.pk).update(is_active=False, deleted_at=timezone.now())
    Delivery.objects.filter(
        subscription=subscription, status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]
    ).update(status=Delivery.Status.DEAD, last_error="Subscription deleted.")
    audit.record("webhook.unsubscribed", subscription)
    transaction.on_commit(lambda: forget_subscribers(subscription.brand_id))


# Which event types a brand has subscribers for, per process, for a few seconds: every
# consent event asks, and a batch of 1,000 must not ask the database 1,000 times. A new
# subscription is seen at once in the process that made it, within seconds elsewhere.
_SUBSCRIBERS_TTL = 5.0
_subscribers: dict[int, tuple[float, frozenset[str]]] = {}


def subscribed_events(brand_id: int) -> frozenset[str]:
    now = time.monotonic()
    cached = _subscribers.get(brand_id)
    if cached and cached[0] > now:
        return cached[1]
    events: set[str] = set()
    for names in Subscription.objects.filter(brand_id=brand_id, is_active=True).values_list("events", flat=True):
        events.update(names)
    _subscribers[brand_id] = (now + _SUBSCRIBERS_TTL, frozenset(events))
    return frozenset(events)


def subscribed_anywhere(event_type: str) -> bool:
    """Whether any brand subscribes to ``event_type`` (cached like ``subscribed_events``):
    lets a merge skip even the look-up of the person's brands when nobody listens."""
    now = time.monotonic()
    cached = _subscribers.get(0)
    if not (cached and cached[0] > now):
        events: set[str] = set()
        for names in Subscription.objects.filter(is_active=True).values_list("events", flat=True).distinct():
            events.update(names)
        cached = (now + _SUBSCRIBERS_TTL, frozenset(events))
        _subscribers[0] = cached  # brand ids start at 1: 0 is "any brand"
    return event_type in cached[1]


def forget_subscribers(brand_id: int | None = None) -> None:
    if brand_id is None:
        _subscribers.clear()
    else:
        _subscribers.pop(brand_id, None)
        _subscribers.pop(0, None)


# --- Publishing ---------------------------------------------------------------------------------


def next_sequence(member_id: int) -> int:
    """The member's next webhook sequence number. The upsert locks the member's row until
    the caller commits, so numbers follow the order in which publishers commit."""
    table = MemberSequence._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (member_id, seq) VALUES (%s, 1)
                ON CONFLICT (member_id) DO UPDATE SET seq = {table}.seq + 1 RETURNING seq""",  # noqa: S608
            [member_id],
        )
        return cursor.fetchone()[0]


def publish(
    event_type: str,
    *,
    brand_ids: list[int],
    data: dict[str, Any] | None = None,
    data_for: Any = None,
    member_id: int | None = None,
    key: str | None = None,
) -> list[Delivery]:
    """One delivery per active subscription of these brands to ``event_type``, sent after
    commit. ``data_for(brand_id)`` builds brand-specific data (each brand sees only its
    own stores), else ``data`` is used. Must run inside the caller's transaction.

    ``key`` names what is published (``"consent.changed:42"``): the event id a brand's
    receivers get is derived from it, so publishing the same thing again (a task run twice)
    finds its deliveries (unique per subscription and event id) and makes no new ones, nor
    takes a new sequence number."""
    subscriptions = [
        s
        for s in Subscription.objects.filter(brand_id__in=brand_ids, is_active=True).select_related("brand")
        if event_type in s.events
    ]
    if key is not None:
        done = Delivery.objects.filter(
            event_id__in=[derived_event_id(key, s.brand_id) for s in subscriptions], subscription__in=subscriptions
        )
        if existing := list(done):
            made = {d.subscription_id for d in existing}
            subscriptions = [s for s in subscriptions if s.pk not in made]
            if not subscriptions:
                return existing
    if not subscriptions:
        return []
    sequence = next_sequence(member_id) if member_id is not None else None
    now = timezone.now()
    bodies: dict[int, tuple[uuid.UUID, str]] = {}
    deliveries = []
    for subscription in subscriptions:
        if subscription.brand_id not in bodies:
            event_id = derived_event_id(key, subscription.brand_id) if key is not None else uuid.uuid4()
            payload = {
                "id": str(event_id),
                "type": event_type,
                "created_at": now.isoformat(),
                "brand": subscription.brand.code,
                "member": member_id,
                "sequence": sequence,
                "data": data_for(subscription.brand_id) if data_for else data,
            }
            bodies[subscription.brand_id] = (event_id, json.dumps(payload, ensure_ascii=False, default=str))
        event_id, body = bodies[subscription.brand_id]
        deliveries.append(
            Delivery(
                subscription=subscription,
                event_type=event_type,
                event_id=event_id,
                member_id=member_id,
                sequence=sequence,
                body=body,
                created_at=now,
                next_attempt_at=now,
            )
        )
    Delivery.objects.bulk_create(deliveries)
    if deliveries[0].pk is None:  # backends that do not return ids from bulk_create
        deliveries = list(Delivery.objects.filter(created_at=now, event_type=event_type, member_id=member_id))
    ids = [d.pk for d in deliveries]
    _send_later(ids)
    return deliveries


_EVENT_IDS = uuid.UUID("6f1d3c52-8a4e-4f0b-9a57-2c1e5b7d9e10")  # the namespace of derived event ids


def derived_event_id(key: str, brand_id: int) -> uuid.UUID:
    return uuid.uuid5(_EVENT_IDS, f"{key}:{brand_id}")


def _send_later(ids: list[int], countdown: float | None = None) -> None:
    """One outbox row per delivery in this transaction; each is sent after the commit."""
    for pk in ids:
        enqueue_on_commit("webhooks.tasks.deliver", pk, countdown=countdown)


# --- Delivering --------------------------------------------------------------------------------
#
# Per-member order (DESIGN.md ⚑): deliveries to one subscription about one member go one at
# a time, in sequence order. A delivery is claimed only when nothing holds it back
# (``Delivery.objects.free_to_send``); one that is held back stays pending, and the
# delivery that finishes before it (delivered or dead-lettered) queues it. A claim and a
# hand-over about a member take turns on that member's MemberSequence row (a PostgreSQL
# row lock, the one ``next_sequence`` takes to number the member's events): the
# conditional UPDATE then sees every claim committed before it, so two workers cannot both
# find the pair free, and a hand-over cannot miss a delivery that a claim found held back.
# SQLite runs one writer at a time, which gives the same.


def backoff(attempts: int) -> dt.timedelta:
    """Delay before attempt ``attempts + 1``: base, 2×base, 4×base… at most six hours."""
    return dt.timedelta(seconds=min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 6 * 3600))


def stale_before(now: dt.datetime) -> dt.datetime:
    """An attempt that started before this lost its worker: no request takes that long."""
    return now - dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)


def _take_members_turn(member_id: int | None) -> None:
    if member_id is not None:
        list(MemberSequence.objects.select_for_update().filter(member_id=member_id).values_list("pk", flat=True))


def _claim(delivery_id: int) -> bool:
    """Take the delivery for sending with one conditional UPDATE; the row count says
    whether this worker won. Claimable: due and pending or retrying (or stuck in "sending"
    by a lost worker), its subscription active, and nothing holding it back."""
    row = Delivery.objects.filter(pk=delivery_id).values("member_id").first()
    if row is None:
        return False
    with transaction.atomic():
        _take_members_turn(row["member_id"])
        now = timezone.now()
        stale = stale_before(now)
        claimable = Q(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING], next_attempt_at__lte=now) | Q(
            status=Delivery.Status.SENDING, last_attempt_at__lt=stale
        )
        # No join in the UPDATE: PostgreSQL then rechecks all of it on a row that another
        # claim changed meanwhile (a join makes Django write "id IN (SELECT …)", rechecked
        # against the old snapshot), so a task delivered twice cannot claim twice.
        active = Subscription.objects.filter(is_active=True).values("pk")
        return bool(
            Delivery.objects.free_to_send(stale_before=stale)
            .filter(claimable, pk=delivery_id, subscription__in=active)
            .update(status=Delivery.Status.SENDING, last_attempt_at=now, next_attempt_at=now)
        )


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """One attempt: the receiver's status (None if there was no answer) and what to record
    when it is not a success. A refused target (``webhooks.transport``: checked again now,
    DNS may have changed since the subscription) is a failed attempt with its reason."""
    try:
        return transport.post(
            url, body, headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS,
        )  # fmt: skip
    except transport.TargetRefused as exc:
        return None, f"Refused: {exc.message}"[:1000]
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ssl.SSLError is an OSError
        return None, f"{type(exc).__name__}: {exc}"[:1000]


def deliver(delivery_id: int) -> float | None:
    """Send one delivery if it is due and nothing holds it back; returns seconds until the
    retry it scheduled, if any. Idempotent: a delivery already sent, dead, being sent, or
    waiting behind an earlier one of its member is left alone."""
    if not _claim(delivery_id):
        return None
    delivery = Delivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    body = delivery.body.encode()
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "cdp-webhooks/1",
        **standard_headers(subscription.secret, str(delivery.event_id), now, body),
        "X-CDP-Event": delivery.event_type,
        "X-CDP-Event-Id": str(delivery.event_id),
        "X-CDP-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(subscription.secret, now, body),  # deprecated (webhooks.signing)
    }
    started_at, started = timezone.now(), time.monotonic()
    status, error = _post(subscription.url, body, headers)
    ok = status is not None and 200 <= status < 300
    attempt = DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempts + 1,
        started_at=started_at,
        duration_ms=round((time.monotonic() - started) * 1000),
        status_code=status,
        error="" if ok else error or f"HTTP {status}",
    )
    if ok:
        _finish_attempt(delivery, attempt, status=Delivery.Status.SUCCEEDED, delivered_at=timezone.now())
        return None
    this_round = attempt.number - delivery.attempts_before_redelivery
    if this_round >= settings.WEBHOOK_MAX_ATTEMPTS:
        _finish_attempt(delivery, attempt, status=Delivery.Status.DEAD)
        log.warning("webhook delivery %s dead after %s attempts: %s", delivery.pk, this_round, attempt.error)
        return None
    delay = backoff(this_round)
    _finish_attempt(delivery, attempt, status=Delivery.Status.RETRYING, next_attempt_at=timezone.now() + delay)
    return delay.total_seconds()


@transaction.atomic
def _finish_attempt(delivery: Delivery, attempt: DeliveryAttempt, *, status: str, **fields: Any) -> None:
    """Record an attempt and its outcome; a delivery that is done (delivered or dead)
    hands its member's turn to the next delivery waiting behind it. Only the worker whose
    claim still stands reports the outcome: one so slow that another took the delivery
    back as lost leaves only its attempt in the log."""
    done = status in (Delivery.Status.SUCCEEDED, Delivery.Status.DEAD)
    if done:
        _take_members_turn(delivery.member_id)
    attempt.save()
    reported = Delivery.objects.filter(
        pk=delivery.pk, status=Delivery.Status.SENDING, last_attempt_at=delivery.last_attempt_at
    ).update(
        status=status, attempts=attempt.number, last_status_code=attempt.status_code, last_error=attempt.error,
        **fields,
    )  # fmt: skip
    if reported and done and delivery.member_id is not None:
        _send_next(subscription_id=delivery.subscription_id, member_id=delivery.member_id)


def _send_next(*, subscription_id: int, member_id: int) -> None:
    """Queue (after commit) the pair's earliest delivery still to be sent. It is the one
    nothing holds back once the caller's delivery is done; if it is a retry not yet due,
    the claim refuses it and its own countdown or the sweep sends it when due."""
    following = (
        Delivery.objects.filter(
            subscription_id=subscription_id,
            member_id=member_id,
            status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING],
            subscription__is_active=True,
        )
        .order_by("sequence", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    if following is not None:
        enqueue_on_commit("webhooks.tasks.deliver", following)


def due_deliveries(*, overdue_before: dt.datetime, limit: int = 1000) -> list[int]:
    """Deliveries the sweep should start: due for a while, and first in their member's
    line (a later one is left for the hand-over of the one before it)."""
    return list(
        Delivery.objects.free_to_send(stale_before=stale_before(timezone.now()))
        .filter(status__in=Delivery.UNFINISHED, next_attempt_at__lt=overdue_before, subscription__is_active=True)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def redeliver(deliveries: Any) -> tuple[int, int]:
    """Send these deliveries again (staff's "redeliver" action) with a fresh set of
    attempts; the attempts made so far stay in the log. The body is the same, the
    signature's timestamp new. Each waits for the earlier deliveries of its member that
    are still to be sent. Returns how many were queued, and how many of those are older
    than a delivery of their member that was already delivered: they arrive after it,
    with their lower sequence number."""
    ids = list(
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries], subscription__is_active=True)
        .exclude(status=Delivery.Status.SENDING)
        .values_list("pk", flat=True)
    )
    newer_delivered = Delivery.objects.filter(
        subscription_id=OuterRef("subscription_id"), member_id=OuterRef("member_id"),
        sequence__gt=OuterRef("sequence"), status=Delivery.Status.SUCCEEDED,
    ).exclude(pk__in=ids)  # fmt: skip
    late = Delivery.objects.filter(Exists(newer_delivered), pk__in=ids, member_id__isnull=False).count()
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), attempts_before_redelivery=F("attempts")
    )
    for pk in ids:
        audit.record("webhook.redelivered", Delivery(pk=pk))
    _send_later(ids)
    return len(ids), late

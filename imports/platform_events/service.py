"""A platform's membership events (入会, update, 解绑): ``receive_push`` stores a push's
events and answers at once; ``apply_waiting`` applies them after, on a worker, one
transaction per event, in the order they arrived.

Why two steps: a platform waits for the answer, retries when it is slow, and pushes in
bursts (a live-stream sale joins thousands of shoppers a minute). Storing the event is
one insert; applying it (identity resolution, the membership, the ledger, webhooks) is
a dozen statements that should never decide whether the platform sees a timely 2xx.
Everything that can refuse a push (signature, payload, the values a profile takes, a
join older than every version of the agreement) is checked before the answer, so a
push answered 200 is one that will apply; what still fails at apply time is marked
``failed`` with its reason and can be applied again from the admin.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue_on_commit, wake_on_commit
from consent.models import Action, ConsentState, Notice, SourceType
from consent.services import ConsentError, record_consent
from members.identities import RecordError, StoreRecord
from members.models import StoreMembership
from members.services import resolve_store_record

from .adapters import MembershipEvent, PayloadError
from .models import PlatformConnection, PlatformEvent

logger = logging.getLogger(__name__)

Kind = PlatformEvent.Kind
Outcome = PlatformEvent.Outcome
STANDING = (Action.GRANTED, Action.CONFIRMED, Action.REQUESTED)
APPLY_TASK = "imports.tasks.apply_platform_events"
# Events one task applies before it hands the rest to a fresh task (other connections'
# tasks get their turn on a busy worker).
APPLY_BATCH = 500


@dataclass(frozen=True)
class Received:
    event_id: str
    kind: str
    outcome: str
    detail: str
    duplicate: bool

    def as_dict(self) -> dict[str, object]:
        return {"event_id": self.event_id, "kind": self.kind, "outcome": self.outcome, "detail": self.detail,
                "duplicate": self.duplicate}  # fmt: skip


def actor(connection: PlatformConnection) -> audit.Actor:
    return audit.Actor(type="system", label=f"{connection.adapter} push to store {connection.store.code}"[:150])


def receive_push(connection: PlatformConnection, events: list[MembershipEvent]) -> list[Received]:
    """Store the events of one push for a worker to apply, all or none, and start the
    worker once they commit. An event that could not apply (a value the profile does not
    take, a join older than every version of the agreement) refuses the whole push with
    ``PayloadError`` before anything is stored. The same event id again (platforms retry
    until they see a 2xx) answers what the first one became, and is stored once."""
    for event in events:
        check(connection, event)
    with transaction.atomic():
        received = [_store(connection, event) for event in events]
        if not all(result.duplicate for result in received):
            # The pending rows are the work's durable record; beat applies what a lost
            # nudge leaves waiting (``apply_stalled``).
            wake_on_commit(APPLY_TASK, connection.pk)
    return received


def check(connection: PlatformConnection, event: MembershipEvent) -> None:
    """What applying the event would refuse, found without writing (``PayloadError``)."""
    if event.kind == Kind.ENDED:
        return
    _record(connection, event)
    if event.kind == Kind.JOINED:
        agreement_shown(connection, event.occurred_at)


def _store(connection: PlatformConnection, event: MembershipEvent) -> Received:
    try:
        # A savepoint: a concurrent push of the same event waits on the unique index
        # until the first commits, then fails here and answers what the first became.
        with transaction.atomic():
            PlatformEvent.objects.create(
                connection=connection, event_id=event.event_id, kind=event.kind, outcome=Outcome.PENDING,
                occurred_at=event.occurred_at, values=event.values,
            )  # fmt: skip
    except IntegrityError:
        seen = PlatformEvent.objects.filter(connection=connection, event_id=event.event_id).first()
        if seen is None:
            raise
        return Received(seen.event_id, seen.kind, seen.outcome, seen.detail, duplicate=True)
    return Received(event.event_id, event.kind, Outcome.PENDING, "", duplicate=False)


def apply_waiting(connection_id: int, *, limit: int = APPLY_BATCH) -> int:
    """Apply the connection's waiting events in the order they arrived, each in its own
    transaction under the connection's row lock: a second worker waits for the first, so
    one person's join, update and unbind are never applied out of order. Applies at most
    ``limit`` events and queues a task for the rest. Returns how many it applied."""
    done = 0
    while done < limit:
        with transaction.atomic():
            connection = (
                PlatformConnection.objects.select_for_update(of=("self",))
                .select_related("store__brand", "agreement_purpose", "agreement_notice")
                .filter(pk=connection_id)
                .first()
            )
            row = connection and connection.events.filter(outcome=Outcome.PENDING).order_by("id").first()
            if row is None:
                return done
            _apply(connection, row)
        done += 1
    enqueue_on_commit(APPLY_TASK, connection_id)
    return done


def apply_stalled(older_than: dt.timedelta = dt.timedelta(minutes=1)) -> int:
    """Beat's safety net: apply what waits longer than ``older_than`` (a worker died
    between taking the task and finishing it). Returns how many events it applied."""
    cutoff = timezone.now() - older_than
    waiting = (
        PlatformEvent.objects.filter(outcome=Outcome.PENDING, received_at__lt=cutoff)
        .values_list("connection_id", flat=True)
        .distinct()
    )
    return sum(apply_waiting(connection_id) for connection_id in list(waiting))


def retry_failed(events: list[PlatformEvent]) -> int:
    """Put failed events back in line (after the cause was mended, e.g. the agreement
    version the store showed was published). Returns how many were put back."""
    with transaction.atomic():
        failed = list(PlatformEvent.objects.filter(pk__in=[e.pk for e in events], outcome=Outcome.FAILED))
        PlatformEvent.objects.filter(pk__in=[e.pk for e in failed]).update(
            outcome=Outcome.PENDING, detail="", applied_at=None
        )
        for row in failed:
            audit.record("platform.event_retried", row, changes={"failed_with": row.detail})
        for connection_id in sorted({row.connection_id for row in failed}):
            enqueue_on_commit(APPLY_TASK, connection_id)
    return len(failed)


def _apply(connection: PlatformConnection, row: PlatformEvent) -> None:
    event = MembershipEvent(event_id=row.event_id, kind=row.kind, occurred_at=row.occurred_at, values=row.values)
    try:
        with transaction.atomic(), audit.acting_as(actor(connection)):
            if row.kind == Kind.ENDED:
                outcome, detail, member_id = _end(connection, event, row)
            else:
                outcome, detail, member_id = _join_or_update(connection, event, row)
    except (OperationalError, InterfaceError):
        raise  # the database went away: the event stays waiting and the task is retried
    except PayloadError as exc:
        outcome, detail, member_id = Outcome.FAILED, f"{exc.field}: {exc.message}", None
    except Exception as exc:  # one bad event (a constraint, a bug) must not hold up the store's others
        logger.exception("platform event %s of connection %s could not be applied", row.pk, connection.pk)
        outcome, detail, member_id = Outcome.FAILED, f"could not be applied ({type(exc).__name__}); see the logs", None
    row.outcome, row.detail, row.member_id, row.applied_at = outcome, detail[:300], member_id, timezone.now()
    if outcome != Outcome.FAILED:
        row.values = {}  # phone numbers and names: the profile holds them now
    row.save(update_fields=["outcome", "detail", "member", "applied_at", "values"])


def _record(connection: PlatformConnection, event: MembershipEvent) -> StoreRecord:
    values = dict(event.values)
    if event.kind == Kind.JOINED:
        values["joined_at"] = event.occurred_at
    try:
        return StoreRecord.clean(store=connection.store, observed_at=event.occurred_at, **values)
    except RecordError as exc:
        raise PayloadError(exc.field, exc.message) from None


def _join_or_update(
    connection: PlatformConnection, event: MembershipEvent, row: PlatformEvent
) -> tuple[str, str, int | None]:
    record = _record(connection, event)
    member = resolve_store_record(record).member
    if event.kind == Kind.UPDATED:
        return Outcome.APPLIED, "membership updated", member.pk
    StoreMembership.objects.filter(
        store=connection.store, store_member_id=record.store_member_id, left_at__isnull=False
    ).update(left_at=None, joined_at=event.occurred_at)
    notice = agreement_shown(connection, event.occurred_at)
    try:
        record_consent(
            member=member, brand=connection.store.brand, purpose=connection.agreement_purpose,
            action=Action.GRANTED, source_type=SourceType.STORE, store=connection.store, notice=notice,
            occurred_at=event.occurred_at, source_ref=f"platform-event:{row.pk}",
            evidence={"platform": connection.adapter, "platform_event_id": event.event_id, "event": "joined"},
            external_id=f"platform:{connection.pk}:{event.event_id}",
        )  # fmt: skip
    except ConsentError as exc:
        raise PayloadError(exc.field, exc.message) from None
    return Outcome.APPLIED, f"joined; membership agreement v{notice.version} recorded", member.pk


def agreement_shown(connection: PlatformConnection, at: dt.datetime) -> Notice:
    """The agreement the store showed at ``at``: the configured version, or, for a join
    before it was published, the version of the same notice in force then."""
    notice = connection.agreement_notice
    if notice.published_at <= at:
        return notice
    earlier = (
        Notice.objects.filter(
            brand_id=notice.brand_id,
            kind=notice.kind,
            purpose_id=notice.purpose_id,
            locale=notice.locale,
            published_at__lte=at,
        )  # fmt: skip
        .order_by("-published_at")
        .first()
    )
    if earlier is None:
        raise PayloadError(
            "occurred_at",
            f"the join ({at.isoformat()}) is older than any version of the notice {notice.title!r}; "
            "publish the version the store showed then, or correct the store's connection",
        )
    return earlier


def _end(connection: PlatformConnection, event: MembershipEvent, row: PlatformEvent) -> tuple[str, str, int | None]:
    store_member_id = str(event.values.get("store_member_id", "")).strip()
    membership = (
        StoreMembership.objects.select_related("member")
        .filter(store=connection.store, store_member_id=store_member_id)
        .first()
    )
    if membership is None:
        return Outcome.IGNORED, "no membership with this id at the store: nothing to end", None
    if membership.left_at is not None and membership.left_at >= event.occurred_at:
        return Outcome.IGNORED, "the membership had already ended", membership.member_id
    membership.left_at = event.occurred_at
    membership.save(update_fields=["left_at", "updated_at"])
    withdrawn = 0
    for state in _resting_on(connection, membership.member_id):
        recorded = record_consent(
            member=membership.member, brand=connection.store.brand, purpose=state.purpose,
            action=Action.WITHDRAWN, channel=state.channel, source_type=SourceType.STORE, store=connection.store,
            occurred_at=event.occurred_at, source_ref=f"platform-event:{row.pk}",
            evidence={"platform": connection.adapter, "platform_event_id": event.event_id, "event": "unbound"},
            external_id=f"platform:{connection.pk}:{event.event_id}:{state.purpose_id}:{state.channel or '-'}",
        )  # fmt: skip
        withdrawn += recorded.state_changed
    return Outcome.APPLIED, f"membership ended; {withdrawn} consent(s) withdrawn", membership.member_id


def _resting_on(connection: PlatformConnection, member_id: int) -> list[ConsentState]:
    """The person's standing consents with the brand that rested on this store's
    membership: the agreement, and what the store itself recorded."""
    return list(
        ConsentState.objects.select_related("purpose")
        .filter(member_id=member_id, brand_id=connection.store.brand_id, action__in=STANDING)
        .filter(
            Q(purpose_id=connection.agreement_purpose_id)
            | Q(event__store_id=connection.store_id, event__source_type=SourceType.STORE)
        )
        .order_by("purpose_id", "channel")
    )

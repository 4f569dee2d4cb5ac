"""Applying a platform's membership event (入会, update, 解绑): ``apply_event``, one
transaction per event, idempotent on the platform's event id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from cdp import audit
from consent.models import Action, ConsentState, Notice, SourceType
from consent.services import ConsentError, record_consent
from members.identities import RecordError, StoreRecord
from members.models import StoreMembership
from members.services import resolve_store_record

from .adapters import MembershipEvent, PayloadError
from .models import PlatformConnection, PlatformEvent

Kind = PlatformEvent.Kind
Outcome = PlatformEvent.Outcome
STANDING = (Action.GRANTED, Action.CONFIRMED, Action.REQUESTED)


@dataclass(frozen=True)
class Applied:
    event_id: str
    kind: str
    outcome: str
    detail: str
    member_id: int | None
    duplicate: bool

    def as_dict(self) -> dict[str, object]:
        return {"event_id": self.event_id, "kind": self.kind, "outcome": self.outcome, "detail": self.detail,
                "duplicate": self.duplicate}  # fmt: skip


def actor(connection: PlatformConnection) -> audit.Actor:
    return audit.Actor(type="system", label=f"{connection.adapter} push to store {connection.store.code}"[:150])


def apply_push(connection: PlatformConnection, events: list[MembershipEvent]) -> list[Applied]:
    """Apply the events of one push, all or none: an unreadable event leaves the push's
    earlier events unapplied too, so the platform's retry finds nothing half done. A push
    of one event (every adapter's but Douyin's) is its own transaction: no savepoint."""
    if len(events) == 1:
        return [apply_event(connection, events[0])]
    with transaction.atomic():
        return [apply_event(connection, event) for event in events]


def apply_event(connection: PlatformConnection, event: MembershipEvent) -> Applied:
    """Apply one membership event; the same event id again answers what the first did.

    Joining creates or updates the membership (identity resolution) and records the
    membership agreement as granted, with the notice the store showed; it never implies
    marketing consent. Updating changes the membership's values. Unbinding ends the
    membership and withdraws, through the ledger, the consents that rested on it: the
    agreement, and every standing grant the store recorded for the person.
    """
    try:
        with transaction.atomic():
            # Claimed first: a concurrent push of the same event waits on the unique index
            # until this one commits, then finds it.
            row = PlatformEvent.objects.create(
                connection=connection, event_id=event.event_id, kind=event.kind, outcome=Outcome.APPLIED,
                occurred_at=event.occurred_at,
            )  # fmt: skip
            with audit.acting_as(actor(connection)):
                if event.kind == Kind.ENDED:
                    outcome, detail, member_id = _end(connection, event, row)
                else:
                    outcome, detail, member_id = _join_or_update(connection, event, row)
            row.outcome, row.detail, row.member_id = outcome, detail[:300], member_id
            row.save(update_fields=["outcome", "detail", "member"])
    except IntegrityError:
        seen = PlatformEvent.objects.filter(connection=connection, event_id=event.event_id).first()
        if seen is None:
            raise
        return Applied(seen.event_id, seen.kind, seen.outcome, seen.detail, seen.member_id, duplicate=True)
    return Applied(row.event_id, row.kind, row.outcome, row.detail, row.member_id, duplicate=False)


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

"""Recording consent: ``record_consent`` is the one door into the ledger (the privacy
center, the API, imports, the admin, unsubscribe links, double opt-in and SMS replies
all come through it), ``record_consents`` its batch form."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Q, When
from django.utils import timezone

from members.models import Brand, Member, Store
from members.queries import canonical_member

from .. import ledger, signals
from ..evidence_scrub import scrub_evidence
from ..ledger_batch import NewEvent, append_many
from ..models import (
    NO_CHANNEL,
    Action,
    Channel,
    ConsentEvent,
    ConsentState,
    Notice,
    Purpose,
    SourceType,
)
from ..validation import (
    EmailOptIns,
    Incoming,
    Problem,
    confirmation_problem,
    event_problem,
    incoming_choice,
    latest_allowed,
    purpose_problem,
    relays_email_grant,
    with_confirmation,
)
from .email_requests import email_opt_ins, judge_relayed_request, queue_opt_in_mail

logger = logging.getLogger(__name__)

# A plain set: checked on every write, and Enum.values builds a new list each time.
_SOURCES = frozenset(SourceType.values)
MAX_SOURCE_REF = 200


class ConsentError(ValueError):
    """A consent event that cannot be recorded; ``field`` names what is wrong, ``parts``
    the parts of it at fault (the missing fields of a ``confirmation``)."""

    def __init__(self, field: str, message: str, parts: tuple[str, ...] = ()) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.parts = parts


def _refuse(problem: Problem | None) -> None:
    """Raise the ``consent.validation`` problem, if any, as a ``ConsentError``."""
    if problem is not None:
        raise ConsentError(problem.field, problem.message, problem.parts)


@dataclass
class Recorded:
    event: ConsentEvent
    created: bool  # False: the external id was seen before, nothing new was stored
    state_changed: bool


def resolve_purpose(brand: Brand, purpose: Purpose | str) -> Purpose:
    """The brand's purpose, given as itself or by the code of an active one."""
    if isinstance(purpose, Purpose):
        _refuse(purpose_problem(brand, purpose, purpose.code))
        return purpose
    found = Purpose.objects.filter(brand=brand, code=purpose, is_active=True).first()
    _refuse(purpose_problem(brand, found, purpose))
    assert found is not None  # _refuse raised otherwise
    return found


def current_notice(brand: Brand, purpose: Purpose, locale: str = "") -> Notice | None:
    """The notice a person is shown for this purpose now: the newest purpose notice in
    their language (else in the brand's fallback order), else the newest member agreement
    or policy. The SQL form of ``texts.notice_rank`` (the privacy center ranks in memory)."""
    order = brand.language_order(locale or None)
    return (
        Notice.objects.filter(brand=brand)
        .filter(Q(kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose) | Q(purpose__isnull=True))
        .annotate(
            is_purpose=Case(When(kind=Notice.Kind.PURPOSE_NOTICE, then=1), default=0),
            language=Case(*[When(locale=code, then=rank) for rank, code in enumerate(order)], default=len(order)),
            is_agreement=Case(When(kind=Notice.Kind.MEMBER_AGREEMENT, then=1), default=0),
        )
        .order_by("-is_purpose", "language", "-is_agreement", "-version", "-published_at")
        .first()
    )


def record_consent(
    *,
    member: Member,
    brand: Brand,
    purpose: Purpose | str,
    action: str,
    source_type: str,
    channel: str = NO_CHANNEL,
    occurred_at: dt.datetime | None = None,
    source_ref: str = "",
    store: Store | None = None,
    notice: Notice | None = None,
    evidence: dict[str, Any] | None = None,
    by_guardian: bool = False,
    external_id: str | None = None,
    confirmation: Mapping[str, Any] | None = None,
    opt_in_mail: bool = True,
) -> Recorded:
    """Append one consent event to the member's chain and update the projection.

    Idempotent on ``external_id`` (per brand): the same event sent twice is stored once.
    ``occurred_at`` is when the person acted; the state moves only if it is not older than
    the state's, so a late-arriving old event never overrides a newer choice.

    An e-mail grant passed on by a store, the API, an import or staff becomes a request
    (``consent.validation.incoming_choice``) whose confirmation mail is queued with it
    (``EmailOptIns``: at most one a day per person and brand; ``opt_in_mail=False`` holds
    it back, for demo people), or nothing when the person's e-mail consent is confirmed
    or was asked for within the day (``created`` is False, ``event`` is that one). With
    ``confirmation`` (``confirmed_at``, ``ip``, ``message_id``: the source's own double
    opt-in) it is ``confirmed``, the proof kept in the evidence; ``confirmed`` needs it.
    """
    purpose = resolve_purpose(brand, purpose)
    now = timezone.now()
    occurred_at = occurred_at or now
    if source_type not in _SOURCES:
        raise ConsentError("source", f"{source_type!r} is not a known source")
    member = canonical_member(member)
    if notice is None:
        notice = current_notice(brand, purpose, member.locale)
    _refuse(
        event_problem(
            brand=brand, purpose=purpose, channel=channel, action=action, occurred_at=occurred_at, notice=notice,
            store=store, member_status=member.status, now=now,
        )
    )  # fmt: skip
    incoming = _incoming(action, channel, source_type, confirmation, now)
    relayed_request = incoming.action == Action.REQUESTED and relays_email_grant(action, channel, source_type)
    action = incoming.action
    evidence = scrub_evidence(with_confirmation(evidence, incoming), member)
    evidence_text = _evidence_text(evidence)
    if external_id is not None:
        # No look-up first: the unique (brand, external_id) of ExternalEventId answers "seen
        # before" for the price of the insert, and the except clause below fetches the event.
        external_id = str(external_id).strip()[:200] or None
    event = ConsentEvent(
        member_id=member.pk,
        brand_id=brand.pk,
        purpose_id=purpose.pk,
        channel=channel,
        action=action,
        occurred_at=occurred_at,
        recorded_at=timezone.now(),
        source_type=source_type,
        source_ref=(source_ref or "")[:MAX_SOURCE_REF],
        store_id=store.pk if store else None,
        notice_id=notice.pk if notice else None,
        evidence=evidence or {},
        by_guardian=by_guardian,
        external_id=external_id,
    )
    event._evidence_text = evidence_text  # encoded once, hashed and stored as is
    try:
        # The signal goes out inside the transaction that appends the event: its receivers
        # (webhooks, receipts) write their outbox rows in it, so the event and what it sets
        # off commit together or not at all (DESIGN.md ⚑ "Side effects go through the outbox").
        with transaction.atomic():
            if relayed_request:
                opt_in = judge_relayed_request(event, member)
                if not opt_in.record:
                    return Recorded(opt_in.standing, created=False, state_changed=False)
                changed = ledger.append(event)
                if opt_in.mail and opt_in_mail:
                    queue_opt_in_mail(event.pk)
            else:
                if action == Action.CONFIRMED and incoming.confirmation is None:
                    _check_open_request(member, brand, purpose, channel)
                changed = ledger.append(event)
            signals.consent_changed.send(sender=ConsentEvent, event=event)
    except IntegrityError:
        # Another writer stored the same external id between our check and insert.
        if external_id:
            existing = ledger.stored_events(brand.pk, [external_id]).get(external_id)
            if existing is not None:
                return Recorded(existing, created=False, state_changed=False)
        raise
    return Recorded(event, created=True, state_changed=changed)


def _incoming(
    action: str, channel: str, source_type: str, confirmation: Mapping[str, Any] | None, now: dt.datetime
) -> Incoming:
    """What the event becomes (``consent.validation``); refuses a ``confirmed`` without
    proof and a proof that is incomplete or out of place."""
    _refuse(
        confirmation_problem(
            action=action, channel=channel, source_type=source_type, confirmation=confirmation,
            latest=latest_allowed(now),
        )
    )  # fmt: skip
    return incoming_choice(action=action, channel=channel, source_type=source_type, confirmation=confirmation)


def _evidence_text(evidence: Any) -> str:
    if evidence is None:
        return "{}"
    if not isinstance(evidence, dict):
        raise ConsentError("evidence", "must be an object")
    try:
        return ledger.canonical_json(evidence)
    except (TypeError, ValueError):
        raise ConsentError("evidence", "must contain only text, numbers, booleans, lists and objects") from None


def _check_open_request(member: Member, brand: Brand, purpose: Purpose, channel: str) -> None:
    """Only a person answering an open request confirms; nobody may skip double opt-in.
    The member row lock makes two concurrent confirmations take turns."""
    Member.objects.select_for_update().filter(pk=member.pk).first()
    current = (
        ConsentState.objects.filter(member_id=member.pk, brand=brand, purpose=purpose, channel=channel)
        .values_list("action", flat=True)
        .first()
    )
    if current not in (Action.REQUESTED, Action.CONFIRMED):
        raise ConsentError("action", "a confirmation needs an open double opt-in request ('requested') first")


@dataclass
class ConsentInput:
    """One event of a batch for ``record_consents``: the arguments of ``record_consent``
    that differ per event."""

    member: Member
    purpose: Purpose | str
    action: str
    channel: str = NO_CHANNEL
    occurred_at: dt.datetime | None = None
    store: Store | None = None
    notice: Notice | None = None
    evidence: dict[str, Any] | None = None
    by_guardian: bool = False
    external_id: str | None = None
    confirmation: Mapping[str, Any] | None = None  # the source's own double opt-in: confirmed_at, ip, message_id


class BatchConsentError(ConsentError):
    """``ConsentError`` of the batch item at ``index``."""

    def __init__(self, index: int, error: ConsentError) -> None:
        super().__init__(error.field, error.message, error.parts)
        self.index = index


def record_consents(
    items: list[ConsentInput], *, brand: Brand, source_type: str, source_ref: str = "", opt_in_mail: bool = True
) -> list[Recorded]:
    """``record_consent`` for a batch (the API's up to 1,000 events), all or nothing: the
    same checks, the same idempotency on ``external_id`` (also within the batch), the same
    e-mail double opt-in (``EmailOptIns`` judges the batch's requests in order), the same
    results, but the ledger is written with ``ledger.append_many`` in a few statements
    instead of one round trip per event. ``consent_changed`` is sent per new event inside
    the batch's transaction. A concurrent writer storing one of the external ids first makes the batch try
    again once (it then finds that event as already recorded)."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _record_batch(
                    items, brand=brand, source_type=source_type, source_ref=source_ref, opt_in_mail=opt_in_mail
                )
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Standing:
    """A batch item answered by an event already there (``EmailOptIns``): its id, or an
    earlier event of the batch."""

    event: int | NewEvent


def _batch_opt_ins(items: list[ConsentInput], source_type: str, brand: Brand) -> EmailOptIns | None:
    """``EmailOptIns`` for the people with e-mail events in the batch, their rows locked
    (in id order, so two batches never wait for each other in a circle); None when the
    batch relays no e-mail grant."""
    if not any(relays_email_grant(i.action, i.channel, source_type) for i in items):
        return None
    ids = sorted({canonical_member(i.member).pk for i in items if i.channel == Channel.EMAIL})
    list(Member.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    return email_opt_ins(brand.pk, ids, now=timezone.now())


def _record_batch(
    items: list[ConsentInput], *, brand: Brand, source_type: str, source_ref: str, opt_in_mail: bool
) -> list[Recorded]:
    if source_type not in _SOURCES:
        raise ConsentError("source", f"{source_type!r} is not a known source")
    external_ids = [str(i.external_id).strip()[:200] or None if i.external_id is not None else None for i in items]
    seen: dict[str, ConsentEvent | NewEvent] = dict(ledger.stored_events(brand.pk, external_ids))
    opt_ins = _batch_opt_ins(items, source_type, brand)
    notices: dict[tuple[int, str], Notice | None] = {}
    purposes: dict[Any, Purpose] = {}
    new: list[NewEvent] = []
    to_mail: list[NewEvent] = []
    # A new event, the external id of an earlier one, or the event answering an e-mail request.
    plan: list[NewEvent | str | _Standing] = []
    for index, (item, external_id) in enumerate(zip(items, external_ids, strict=True)):
        if external_id and external_id in seen:
            plan.append(external_id)
            continue
        try:
            key = item.purpose.pk if isinstance(item.purpose, Purpose) else item.purpose
            if key not in purposes:
                purposes[key] = resolve_purpose(brand, item.purpose)
            purpose = purposes[key]
            member = canonical_member(item.member)
            notice = item.notice
            if notice is None:
                pair = (purpose.pk, member.locale)
                if pair not in notices:
                    notices[pair] = current_notice(brand, purpose, member.locale)
                notice = notices[pair]
            now = timezone.now()
            occurred_at = item.occurred_at or now
            _refuse(
                event_problem(
                    brand=brand, purpose=purpose, channel=item.channel, action=item.action, occurred_at=occurred_at,
                    notice=notice, store=item.store, member_status=member.status, now=now,
                )
            )  # fmt: skip
            incoming = _incoming(item.action, item.channel, source_type, item.confirmation, now)
            if incoming.action == Action.CONFIRMED and incoming.confirmation is None:
                _check_open_request(member, brand, purpose, item.channel)
            evidence_text = _evidence_text(scrub_evidence(with_confirmation(item.evidence, incoming), member))
        except ConsentError as exc:
            raise BatchConsentError(index, exc) from None
        event = NewEvent(
            member_id=member.pk, brand_id=brand.pk, purpose_id=purpose.pk, channel=item.channel,
            action=incoming.action, occurred_at=occurred_at, source_type=source_type,
            source_ref=(source_ref or "")[:MAX_SOURCE_REF], store_id=item.store.pk if item.store else None,
            notice_id=notice.pk if notice else None, evidence=evidence_text, by_guardian=item.by_guardian,
            external_id=external_id,
        )  # fmt: skip
        if opt_ins is not None and item.channel == Channel.EMAIL:
            where = {"member_id": member.pk, "purpose_id": purpose.pk, "occurred_at": occurred_at, "event": event}
            if incoming.action == Action.REQUESTED and relays_email_grant(item.action, item.channel, source_type):
                opt_in = opt_ins.request(**where)
                if not opt_in.record:
                    plan.append(_Standing(opt_in.standing))
                    continue
                if opt_in.mail and opt_in_mail:
                    to_mail.append(event)
            else:
                opt_ins.recorded(action=incoming.action, **where)
        if external_id:
            seen[external_id] = event
        new.append(event)
        plan.append(event)
    append_many(new)
    for event in to_mail:
        assert event.pk is not None
        queue_opt_in_mail(event.pk)
    stored = {id(e): _as_event(e) for e in new}
    for event in stored.values():  # in the batch's transaction, as in record_consent
        signals.consent_changed.send(sender=ConsentEvent, event=event)
    standing = ConsentEvent.objects.in_bulk(
        {step.event for step in plan if isinstance(step, _Standing) and isinstance(step.event, int)}
    )
    results = []
    for step in plan:
        if isinstance(step, str):
            earlier = seen[step]
            event = stored[id(earlier)] if isinstance(earlier, NewEvent) else earlier
            results.append(Recorded(event, created=False, state_changed=False))
        elif isinstance(step, _Standing):
            event = stored[id(step.event)] if isinstance(step.event, NewEvent) else standing[step.event]
            results.append(Recorded(event, created=False, state_changed=False))
        else:
            results.append(Recorded(stored[id(step)], created=True, state_changed=step.state_changed))
    return results


@cache
def _event_attnames() -> tuple[str, ...]:
    return tuple(field.attname for field in ConsentEvent._meta.concrete_fields)


def _as_event(new: NewEvent) -> ConsentEvent:
    """The stored event as a model instance (for results and ``consent_changed``), made
    as the ORM makes a fetched row (``from_db``: positional, every field), which costs a
    fraction of keyword arguments: a batch makes up to a thousand."""
    values = {"id": new.pk, "evidence": json.loads(new.evidence)}
    return ConsentEvent.from_db(
        connection.alias,
        None,
        [values[name] if name in values else getattr(new, name) for name in _event_attnames()],
    )

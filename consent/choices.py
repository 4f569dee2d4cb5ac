"""A person's own switch for one purpose and channel (the privacy center's toggle): the
rule of what "on" and "off" mean, and taking a withdrawal back moments after it was made
("Undo"), kept out of the views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q

from members.models import Member
from members.queries import canonical_member

from . import optin, queries, services
from .evidence import person
from .models import Action, Channel, ConsentEvent, ConsentState, Notice, Purpose, SourceType
from .services import gpc

# Bump the version suffix to void every outstanding undo offer at once.
UNDO_SALT = "consent.undo-withdrawal.v1"
# The offer runs out in the person's browser after PRIVACY_UNDO_SECONDS; a click in its
# last second still needs time to reach us.
UNDO_GRACE_SECONDS = 3


@dataclass(frozen=True)
class Choice:
    """What a switch now shows (``"off"``, ``"on"`` or ``"pending"``) and the event the
    change recorded (None when nothing new was recorded)."""

    state: str
    event: ConsentEvent | None = None


def set_choice(
    *,
    member: Member,
    purpose: Purpose,
    channel: str,
    on: bool,
    source_type: str,
    notice: Notice | None,
    evidence: dict[str, Any],
) -> Choice:
    """Turn one switch. ``state`` is ``"off"`` (withdrawn), ``"on"`` (granted) or
    ``"pending"`` (e-mail marketing needs double opt-in, DESIGN.md ⚑ "Default deny": a
    confirmation link is mailed and nothing is granted until it is opened). Raises
    ``services.ConsentError`` when the choice cannot be recorded."""
    common = {"member": member, "brand": purpose.brand, "purpose": purpose, "source_type": source_type}
    if not on:
        recorded = services.record_consent(
            **common, channel=channel, action=Action.WITHDRAWN, notice=notice, evidence=evidence
        )
        return Choice("off", recorded.event)
    if channel == Channel.EMAIL:
        return Choice("pending", optin.request_email_opt_in(**common, notice=notice, evidence=evidence))
    recorded = services.record_consent(
        **common, channel=channel, action=Action.GRANTED, notice=notice, evidence=evidence
    )
    return Choice("on", recorded.event)


# --- Undo of a withdrawal --------------------------------------------------------------------


class UndoRefused(Exception):
    """An undo that cannot be done; nothing was recorded. ``reason``: ``"forged"``,
    ``"expired"``, ``"not_yours"``, ``"changed"`` (the choice changed again since),
    ``"undone"`` (already undone), ``"gpc"`` (the browser's signal refuses the grant) or
    ``"refused"`` (the ledger refused the grant, ``message`` says why)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclass
class Undone:
    """The grants an undo recorded, and what each switch now shows: ``"on"``, or
    ``"pending"`` for e-mail (a new confirmation link, see ``undo_withdrawal``)."""

    events: list[ConsentEvent] = field(default_factory=list)
    states: dict[int, str] = field(default_factory=dict)  # withdrawal id → state now

    @property
    def pending(self) -> bool:
        return "pending" in self.states.values()


def _before(withdrawals: list[ConsentEvent]) -> dict[int, ConsentEvent]:
    """Withdrawal id → the event its choice stood on just before it (the projection's
    rule: the latest by time, then by id, of the events recorded before it). Two queries,
    however many withdrawals."""
    if not withdrawals:
        return {}
    member_id = withdrawals[0].member_id
    pairs = dict(
        ConsentEvent.objects.filter(pk__in=[w.pk for w in withdrawals])
        .annotate(previous=queries.stood_before(Q(member_id__in=person(member_id)), "pk"))
        .values_list("pk", "previous")
    )
    found = ConsentEvent.objects.select_related("notice").in_bulk([pk for pk in pairs.values() if pk])
    return {w: found[p] for w, p in pairs.items() if p in found}


def _restorable(event: ConsentEvent | None) -> bool:
    """A choice that was on (or waiting for its e-mail confirmation) and was the person's
    own: a guardian's consent for a minor is the guardian's to give again, never ours to
    re-create from a click of the minor's account."""
    return event is not None and event.action in services.GRANTING and not event.by_guardian


def undo_token(withdrawals: list[ConsentEvent]) -> str | None:
    """A signed, timed offer to undo those of ``withdrawals`` (one person's, just recorded)
    that turned off something that was on; None when none did (a switch that was off
    already, a choice never made). It names the member and the withdrawals only."""
    if not withdrawals:
        return None
    before = _before(withdrawals)
    ids = sorted(w.pk for w in withdrawals if _restorable(before.get(w.pk)))
    if not ids:
        return None
    return signing.dumps({"m": withdrawals[0].member_id, "w": ids}, salt=UNDO_SALT)


def read_undo_token(token: str) -> tuple[int, list[int]]:
    """The member id and withdrawal ids of ``token``; ``UndoRefused`` when it is not ours
    (``"forged"``) or its time ran out (``"expired"``)."""
    max_age = settings.PRIVACY_UNDO_SECONDS + UNDO_GRACE_SECONDS
    try:
        value = signing.loads(token, salt=UNDO_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise UndoRefused("expired", "the time to undo has run out") from None
    except (signing.BadSignature, ValueError):
        raise UndoRefused("forged", "this undo link is not valid") from None
    ids = value.get("w") if isinstance(value, dict) else None
    member_id = value.get("m") if isinstance(value, dict) else None
    if not isinstance(member_id, int) or not isinstance(ids, list) or not ids:
        raise UndoRefused("forged", "this undo link is not valid")
    if not all(isinstance(pk, int) and not isinstance(pk, bool) for pk in ids):
        raise UndoRefused("forged", "this undo link is not valid")
    return member_id, ids


def _standing(member_id: int, withdrawals: list[ConsentEvent]) -> dict[tuple[int, int, str], ConsentState]:
    keys = Q()
    for w in withdrawals:
        keys |= Q(brand_id=w.brand_id, purpose_id=w.purpose_id, channel=w.channel)
    states = ConsentState.objects.select_related("event").filter(keys, member_id=member_id)
    return {(s.brand_id, s.purpose_id, s.channel): s for s in states}


def _check_unchanged(member_id: int, withdrawals: list[ConsentEvent]) -> None:
    """Every withdrawal is still what its choice stands on. Else it was undone already
    (the choice now stands on an event naming it in ``undo_of``) or changed since."""
    states = _standing(member_id, withdrawals)
    for w in withdrawals:
        state = states.get((w.brand_id, w.purpose_id, w.channel))
        if state is not None and state.event_id == w.pk:
            continue
        if state is not None and w.pk in (state.event.evidence.get("undo_of") or []):
            raise UndoRefused("undone", "this withdrawal was undone already")
        raise UndoRefused("changed", "this choice was changed again since")


@transaction.atomic
def undo_withdrawal(*, member: Member, token: str, evidence: dict[str, Any], gpc_signal: bool = False) -> Undone:
    """Take back the withdrawals of ``token`` (``undo_token``) for ``member``: one new
    event per choice restoring exactly what stood before it (purpose, channel, the notice
    of that grant), source the privacy center, ``evidence["undo_of"]`` naming the undone
    withdrawals. The withdrawals stay in the ledger: it is append-only, and the person did
    withdraw, for those seconds. Webhooks and the rest follow from ``record_consent``.

    All or nothing, and once: the member row is locked (as ``withdraw_all`` and the
    double opt-in lock it), so a second click waits for the first and then finds the
    choice standing on the undo, and is refused (``"undone"``). Refused too, recording
    nothing: a token not ours or out of time, withdrawals of someone else, a choice
    changed again since (by the person, a store, an unsubscribe link), and with
    ``gpc_signal`` a purpose the signal forbids granting (``consent.services.gpc``).

    E-mail: a confirmed e-mail consent is not re-confirmed by this click. It is the same
    person within seconds, but the ledger's rule is that only a person answering an open
    request confirms (``recording._check_open_request``: "nobody may skip double
    opt-in"), and a ``confirmed`` event without one is refused. So the rule is followed:
    the undo records a new e-mail request with the notice of the grant and mails a new
    link (``optin.request_email_opt_in``), and the switch shows "pending"; the page says
    so. Other channels' grants (and an e-mail grant recorded as ``granted``) come back as
    they were.
    """
    member_id, ids = read_undo_token(token)
    member = canonical_member(member)
    if member_id != member.pk:
        raise UndoRefused("not_yours", "these withdrawals are not this person's")
    list(Member.objects.select_for_update().filter(pk=member.pk).values_list("pk", flat=True))
    withdrawals = list(
        ConsentEvent.objects.select_related("brand", "purpose__brand")
        .filter(pk__in=ids, member_id=member.pk, action=Action.WITHDRAWN)
        .order_by("pk")
    )
    if len(withdrawals) != len(set(ids)):
        raise UndoRefused("not_yours", "these withdrawals are not this person's")
    _check_unchanged(member.pk, withdrawals)
    before = _before(withdrawals)
    if gpc_signal and any(gpc.refuses_grant(w.purpose) for w in withdrawals):
        raise UndoRefused("gpc", "the browser's Global Privacy Control signal refuses this grant")
    undone = Undone()
    grant_evidence = {**evidence, "undo_of": [w.pk for w in withdrawals]}
    for w in withdrawals:
        previous = before.get(w.pk)
        if not _restorable(previous):
            raise UndoRefused("changed", "nothing was on before this withdrawal")
        assert previous is not None
        try:
            undone.states[w.pk], event = _restore(member, w, previous, grant_evidence)
        except services.ConsentError as exc:
            raise UndoRefused("refused", exc.message) from exc
        if event.purpose_id == w.purpose_id:
            event.purpose = w.purpose  # loaded already: callers name the choice without a query
        undone.events.append(event)
    return undone


def _restore(
    member: Member, withdrawal: ConsentEvent, previous: ConsentEvent, evidence: dict[str, Any]
) -> tuple[str, ConsentEvent]:
    """Record the grant ``previous`` stood for again (see ``undo_withdrawal`` for e-mail)."""
    common = {
        "member": member, "brand": withdrawal.brand, "purpose": withdrawal.purpose,
        "source_type": SourceType.PRIVACY_CENTER, "notice": previous.notice, "evidence": evidence,
    }  # fmt: skip
    if withdrawal.channel == Channel.EMAIL and previous.action != Action.GRANTED:
        return "pending", optin.request_email_opt_in(**common)
    recorded = services.record_consent(**common, channel=withdrawal.channel, action=Action.GRANTED)
    return "on", recorded.event

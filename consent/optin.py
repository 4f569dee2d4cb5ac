"""Consent a person gives or takes back from their inbox or phone: e-mail double opt-in,
unsubscribe links (RFC 8058 one-click included) and SMS opt-out keywords.

Every change goes through ``services.record_consent``. The links are signed tokens
(``consent.tokens``); the views only translate requests into these calls.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse

from cdp.enqueue import enqueue_on_commit
from members.identities import RecordError, normalize_phone
from members.models import Brand, Identity, IdentityKind, Member
from members.queries import canonical_member

from . import services, tokens
from .models import Action, Channel, ConsentEvent, ConsentState, Notice, Purpose, SourceType
from .services import ConsentError
from .validation import RELAYED_SOURCES

# Replies that mean "stop texting me", compared after NFKC (full-width letters from
# Chinese keyboards become ASCII), trimming and case-folding. 退订/TD are what Chinese
# carriers and MIIT rules expect marketing SMS to honour.
SMS_OPT_OUT_KEYWORDS: frozenset[str] = frozenset({"td", "t", "退订", "stop", "unsubscribe"})
SMS_TEXT_KEPT = 160  # one SMS: enough to show what was sent, bounded evidence


class OptInSuperseded(Exception):
    """The request was withdrawn, re-requested or otherwise changed since the mail went out."""


def _lock_member(member: Member) -> None:
    """Serialise consent changes of one person: two clicks on the same link (mail clients
    and scanners do double-POST) must not both see "not yet done" and both record."""
    list(Member.objects.select_for_update().filter(pk=member.pk).values_list("pk", flat=True))


def _state(member: Member, brand_id: int, purpose_id: int, channel: str) -> ConsentState | None:
    return (
        ConsentState.objects.select_related("event")
        .filter(member_id=member.pk, brand_id=brand_id, purpose_id=purpose_id, channel=channel)
        .first()
    )


# --- Double opt-in -----------------------------------------------------------------------


def opt_in_url(event_id: int) -> str:
    return settings.SITE_URL + reverse("consent:confirm", args=[tokens.make_opt_in_token(event_id)])


def request_email_opt_in(
    *,
    member: Member,
    brand: Brand,
    purpose: Purpose,
    source_type: str,
    source_ref: str = "",
    notice: Notice | None = None,
    evidence: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> ConsentEvent:
    """Record that the person asked for e-mail on ``purpose`` and mail them a link to confirm.

    A person whose e-mail consent is already confirmed is not asked again: a new request
    would suspend a valid confirmation until they click once more. Their confirmation is
    returned and nothing is recorded or sent.
    """
    member = canonical_member(member)
    if not member.email:
        raise ConsentError("email", "this person has no e-mail address to confirm")
    purpose = services.resolve_purpose(brand, purpose)
    state = _state(member, brand.pk, purpose.pk, Channel.EMAIL)
    if state is not None and state.action == Action.CONFIRMED:
        return state.event
    recorded = services.record_consent(
        member=member,
        brand=brand,
        purpose=purpose,
        channel=Channel.EMAIL,
        action=Action.REQUESTED,
        source_type=source_type,
        source_ref=source_ref,
        notice=notice,
        evidence=evidence,
        occurred_at=occurred_at,
    )
    event = recorded.event
    if recorded.created and source_type not in RELAYED_SOURCES:  # record_consent mails those itself
        # After commit: a rolled-back request must not mail a link to nothing, and the
        # worker must find the event when it runs.
        enqueue_on_commit("consent.tasks.send_opt_in_email", event.pk)
    return event


@dataclass
class OptInRequest:
    request: ConsentEvent  # the ``requested`` event, with brand, purpose, notice, member
    member: Member  # the person now (canonical member)
    status: str  # "pending", "confirmed" or "superseded"
    confirmation: ConsentEvent | None = None


def load_opt_in(token: str, *, lock: bool = False) -> OptInRequest:
    """Where the request behind ``token`` stands; reads only. Raises ``tokens.ForgedToken``
    or ``tokens.ExpiredToken``."""
    event_id = tokens.read_opt_in_token(token)
    request = (
        ConsentEvent.objects.select_related("brand", "purpose", "notice", "member__merged_into")
        .filter(pk=event_id, action=Action.REQUESTED, channel=Channel.EMAIL)
        .first()
    )
    if request is None:  # signed by us, so only possible against another database
        raise tokens.ForgedToken("this confirmation link is not valid")
    member = canonical_member(request.member)
    if lock:
        _lock_member(member)
    state = _state(member, request.brand_id, request.purpose_id, Channel.EMAIL)
    if state is not None and state.event_id == request.pk:
        return OptInRequest(request, member, "pending")
    if (
        state is not None
        and state.action == Action.CONFIRMED
        and state.event.evidence.get("request_event_id") == request.pk
    ):
        return OptInRequest(request, member, "confirmed", confirmation=state.event)
    return OptInRequest(request, member, "superseded")


@transaction.atomic
def confirm_email_opt_in(token: str, *, evidence: dict[str, Any]) -> ConsentEvent:
    """Confirm the request behind ``token``. Confirming again returns the confirmation
    already recorded. Raises ``tokens.ForgedToken``, ``tokens.ExpiredToken`` or
    ``OptInSuperseded`` (withdrawn or re-requested since), recording nothing."""
    opt_in = load_opt_in(token, lock=True)
    request = opt_in.request
    if opt_in.status == "superseded":
        raise OptInSuperseded("this request was withdrawn or replaced since the link was sent")
    if opt_in.status == "confirmed":
        assert opt_in.confirmation is not None
        return _with_request_relations(opt_in.confirmation, opt_in)
    recorded = services.record_consent(
        member=opt_in.member,
        brand=request.brand,
        purpose=request.purpose,
        channel=Channel.EMAIL,
        action=Action.CONFIRMED,
        source_type=SourceType.DOUBLE_OPT_IN,
        # The person confirms what they were shown when they asked, not a newer text.
        notice=request.notice,
        evidence={**evidence, "request_event_id": request.pk},
    )
    return _with_request_relations(recorded.event, opt_in)


def _with_request_relations(confirmation: ConsentEvent, opt_in: OptInRequest) -> ConsentEvent:
    """Hand the confirmation back with the objects already loaded, so callers showing
    brand, purpose or notice need no further queries. Only where the ids are the same: an
    in-memory relation must never say something the stored row does not."""
    request = opt_in.request
    for name, obj in (
        ("member", opt_in.member),
        ("brand", request.brand),
        ("purpose", request.purpose),
        ("notice", request.notice),
    ):
        if obj is not None and getattr(confirmation, f"{name}_id") == obj.pk:
            setattr(confirmation, name, obj)
    return confirmation


# --- Unsubscribe -------------------------------------------------------------------------


def unsubscribe_url(member: Member, brand: Brand, purpose: Purpose, channel: str) -> str:
    return unsubscribe_url_for(member.pk, brand.pk, purpose.pk, channel)


def unsubscribe_url_for(member_id: int, brand_id: int, purpose_id: int, channel: str) -> str:
    """The person's one-click unsubscribe link (signed, no sign-in needed)."""
    token = tokens.make_unsubscribe_token(member_id, brand_id, purpose_id, channel)
    return settings.SITE_URL + reverse("consent:unsubscribe", args=[token])


def unsubscribe_headers(member: Member, brand: Brand, purpose: Purpose, channel: str = Channel.EMAIL) -> dict[str, str]:
    """RFC 2369 + RFC 8058 headers: mail clients show an unsubscribe button and POST to
    the link without opening it (one-click); Gmail and Yahoo require both for bulk mail."""
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(member, brand, purpose, channel)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def add_unsubscribe_headers(
    message: EmailMessage, member: Member, brand: Brand, purpose: Purpose, channel: str = Channel.EMAIL
) -> EmailMessage:
    message.extra_headers.update(unsubscribe_headers(member, brand, purpose, channel))
    return message


@dataclass
class Unsubscription:
    member: Member  # canonical
    brand: Brand
    purpose: Purpose
    channel: str
    withdrawn: bool  # the current state is already "withdrawn"
    event: ConsentEvent | None = None  # the withdrawal (new or the one already on record)
    created: bool = False


def load_unsubscribe(token: str, *, lock: bool = False) -> Unsubscription:
    """What the link in ``token`` would withdraw and whether it already is; reads only."""
    target = tokens.read_unsubscribe_token(token)
    member = Member.objects.select_related("merged_into").filter(pk=target.member_id).first()
    purpose = Purpose.objects.select_related("brand").filter(pk=target.purpose_id, brand_id=target.brand_id).first()
    if member is None or purpose is None:
        raise tokens.ForgedToken("this unsubscribe link is not valid")
    member = canonical_member(member)
    if lock:
        _lock_member(member)
    state = _state(member, target.brand_id, target.purpose_id, target.channel)
    withdrawn = state is not None and state.action == Action.WITHDRAWN
    return Unsubscription(
        member, purpose.brand, purpose, target.channel, withdrawn, event=state.event if withdrawn else None
    )


@transaction.atomic
def unsubscribe(token: str, *, evidence: dict[str, Any]) -> Unsubscription:
    """Withdraw what the link names. Already withdrawn: nothing new is recorded. With no
    consent on record a withdrawal is still recorded: it is the person's explicit "no",
    and it outranks an older grant that an import might deliver later."""
    found = load_unsubscribe(token, lock=True)
    if found.withdrawn:
        return found
    recorded = services.record_consent(
        member=found.member,
        brand=found.brand,
        purpose=found.purpose,
        channel=found.channel,
        action=Action.WITHDRAWN,
        source_type=SourceType.UNSUBSCRIBE_LINK,
        evidence=evidence,
    )
    found.event, found.created, found.withdrawn = recorded.event, recorded.created, True
    return found


# --- SMS replies -------------------------------------------------------------------------


def is_sms_opt_out(text: str) -> bool:
    return unicodedata.normalize("NFKC", text or "").strip().casefold() in SMS_OPT_OUT_KEYWORDS


@transaction.atomic
def handle_sms_reply(
    *, brand: Brand, phone: str, text: str, received_at: dt.datetime | None = None
) -> list[ConsentEvent]:
    """An SMS the brand received. An opt-out keyword withdraws SMS on every active
    marketing purpose of the brand for the person owning the phone; anything else, or an
    unknown number, changes nothing. Purposes already withdrawn get no second event."""
    try:
        e164 = normalize_phone(phone)
    except RecordError as exc:
        raise ConsentError("phone", exc.message) from None
    if not is_sms_opt_out(text):
        return []
    identity = (
        Identity.objects.select_related("member__merged_into").filter(kind=IdentityKind.PHONE, value=e164).first()
    )
    if identity is None:
        return []
    member = canonical_member(identity.member)
    _lock_member(member)
    # Purposes per brand are a handful; filtering JSON lists in Python works on SQLite too.
    purposes = [
        p
        for p in Purpose.objects.filter(brand=brand, is_active=True, is_marketing=True)
        if Channel.SMS in (p.channels or [])
    ]
    withdrawn = set(
        ConsentState.objects.filter(
            member_id=member.pk, brand=brand, channel=Channel.SMS, action=Action.WITHDRAWN, purpose__in=purposes
        ).values_list("purpose_id", flat=True)
    )
    evidence = {"text": text.strip()[:SMS_TEXT_KEPT], "phone_last4": e164[-4:]}
    events = []
    for purpose in purposes:
        if purpose.pk in withdrawn:
            continue
        recorded = services.record_consent(
            member=member,
            brand=brand,
            purpose=purpose,
            channel=Channel.SMS,
            action=Action.WITHDRAWN,
            source_type=SourceType.SMS_KEYWORD,
            occurred_at=received_at,
            evidence=evidence,
        )
        events.append(recorded.event)
    return events

"""The contact decision, per member and set-based. This is the one consent filter: every
segment, export and API list uses ``contactable_members``; single checks use
``can_contact``. A property test keeps the two giving the same answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from members.models import Brand, Identity, IdentityKind, Member

from .models import NO_CHANNEL, Action, Channel, ConsentState, Purpose, Suppression


class Reason:
    ALLOWED = "allowed"
    NO_CONSENT = "no_consent"
    WITHDRAWN = "withdrawn"
    PENDING_CONFIRMATION = "pending_confirmation"
    MINOR = "minor"
    UNREACHABLE = "unreachable"
    ERASED = "erased"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class ContactDecision:
    allowed: bool
    reason: str
    as_of: dt.datetime | None = None  # when the deciding consent event happened


# Channels that need a confirmed double opt-in rather than a plain grant.
CONFIRMED_ONLY = {Channel.EMAIL.value}

# Which member field or identity makes a person reachable on a channel.
_REACH_FIELD = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.PHONE: "phone"}
_REACH_IDENTITY = {
    Channel.WECHAT: [IdentityKind.WECHAT_UNIONID],
    Channel.PUSH: [IdentityKind.PLATFORM_USER],
    Channel.IM: [IdentityKind.WECHAT_UNIONID, IdentityKind.PLATFORM_USER],
}
# Suppression lists are kept per kind of contact point.
_SUPPRESSION_CHANNELS = {
    Channel.EMAIL: [Channel.EMAIL],
    Channel.SMS: [Channel.SMS, Channel.PHONE],
    Channel.PHONE: [Channel.SMS, Channel.PHONE],
}


def allowed_actions(channel: str) -> list[str]:
    if channel in CONFIRMED_ONLY:
        return [Action.CONFIRMED.value]
    return [Action.GRANTED.value, Action.CONFIRMED.value]


def minor_cutoff(today: dt.date | None = None) -> dt.date:
    """People born after this date are under ``MINOR_AGE``."""
    today = today or timezone.localdate()
    years = settings.MINOR_AGE
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def _state_reason(action: str | None, channel: str) -> str:
    if action is None:
        return Reason.NO_CONSENT
    if action == Action.WITHDRAWN:
        return Reason.WITHDRAWN
    if action not in allowed_actions(channel):
        return Reason.PENDING_CONFIRMATION
    return Reason.ALLOWED


def can_contact(
    member: Member | int, brand: Brand | int, purpose: Purpose, channel: str = NO_CHANNEL
) -> ContactDecision:
    """May ``brand`` use this person's data for ``purpose`` on ``channel``, and if not, why.

    At most three queries: the member (with reachability), the state, the suppression list.
    """
    member_id = member if isinstance(member, int) else member.pk
    brand_id = brand if isinstance(brand, int) else brand.pk
    annotations = {
        f"has_{kind}": Exists(Identity.objects.filter(member=OuterRef("pk"), kind=kind))
        for kind in _REACH_IDENTITY.get(channel, [])
    }
    row = (
        Member.objects.filter(pk=member_id)
        .annotate(**annotations)
        .values("pk", "status", "merged_into_id", "birth_date", "phone", "email", *annotations)
        .first()
    )
    if row is None:
        return ContactDecision(False, Reason.NO_CONSENT)
    if row["merged_into_id"] is not None:
        return can_contact(row["merged_into_id"], brand_id, purpose, channel)
    if row["status"] == Member.Status.ERASED:
        return ContactDecision(False, Reason.ERASED)

    state = (
        ConsentState.objects.filter(member_id=member_id, brand_id=brand_id, purpose=purpose, channel=channel)
        .values("action", "occurred_at", "by_guardian")
        .first()
    )
    reason = _state_reason(state["action"] if state else None, channel)
    as_of = state["occurred_at"] if state else None
    if reason != Reason.ALLOWED:
        return ContactDecision(False, reason, as_of)
    if purpose.is_marketing and row["birth_date"] and row["birth_date"] > minor_cutoff() and not state["by_guardian"]:
        return ContactDecision(False, Reason.MINOR, as_of)
    if channel in _REACH_FIELD and not row[_REACH_FIELD[channel]]:
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if channel in _REACH_IDENTITY and not any(row[name] for name in annotations):
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if channel in _SUPPRESSION_CHANNELS:
        value = row[_REACH_FIELD[channel]]
        suppressed = Suppression.objects.filter(
            Q(brand_id=brand_id) | Q(brand__isnull=True), channel__in=_SUPPRESSION_CHANNELS[channel], value=value
        ).exists()
        if suppressed:
            return ContactDecision(False, Reason.SUPPRESSED, as_of)
    return ContactDecision(True, Reason.ALLOWED, as_of)


def consent_q(brand: Brand | int, purpose: Purpose, channel: str = NO_CHANNEL) -> Q:
    """Members whose consent allows ``purpose`` on ``channel`` (active, consent state that
    allows it, guardian consent for minors in marketing): the consent half of ``can_contact``
    as a condition on ``Member``, so segment funnels can count it separately."""
    brand_id = brand if isinstance(brand, int) else brand.pk
    states = ConsentState.objects.filter(
        member=OuterRef("pk"), brand_id=brand_id, purpose=purpose, channel=channel, action__in=allowed_actions(channel)
    )
    q = Q(status=Member.Status.ACTIVE) & Q(Exists(states))
    if purpose.is_marketing:
        q &= ~(Q(birth_date__gt=minor_cutoff()) & ~Q(Exists(states.filter(by_guardian=True))))
    return q


def reachable_q(brand: Brand | int, channel: str = NO_CHANNEL) -> Q:
    """Members who have a contact point for ``channel`` that is not on a suppression list:
    the reachability half of ``can_contact``."""
    brand_id = brand if isinstance(brand, int) else brand.pk
    q = Q()
    if channel in _REACH_FIELD:
        q &= ~Q(**{_REACH_FIELD[channel]: ""})
    if channel in _REACH_IDENTITY:
        q &= Q(Exists(Identity.objects.filter(member=OuterRef("pk"), kind__in=_REACH_IDENTITY[channel])))
    if channel in _SUPPRESSION_CHANNELS:
        suppressed = Suppression.objects.filter(
            Q(brand_id=brand_id) | Q(brand__isnull=True),
            channel__in=_SUPPRESSION_CHANNELS[channel],
            value=OuterRef(_REACH_FIELD[channel]),
        )
        q &= ~Q(Exists(suppressed))
    return q


def contactable_members(brand: Brand | int, purpose: Purpose, channel: str = NO_CHANNEL) -> QuerySet[Member]:
    """Every member ``can_contact`` allows, as one query (for segments and exports)."""
    return Member.objects.filter(consent_q(brand, purpose, channel) & reachable_q(brand, channel))

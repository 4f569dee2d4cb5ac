"""The contact decision, per member and set-based. This is the one consent filter: every
segment, export and API list uses ``contactable_members``; single checks use
``can_contact``. A property test keeps the two giving the same answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
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


class _Slot(str):
    """Names a per-call parameter in the compiled decision query."""


# Sentinels the decision query is compiled with once per shape; their positions in the
# parameter list are where each call's values go.
_SENTINELS = {
    "brand": -7_000_001,
    "purpose": -7_000_002,
    "member": -7_000_003,
    "kind": "\x1fcdp-kind",
    "value": "\x1fcdp-value",
}
_COMPILED: dict[tuple[bool, str], tuple[str, list[Any], list[str]]] = {}


def _decision_rows(values: dict[str, Any], *, by_identity: bool, channel: str) -> QuerySet[Member]:
    """The member with its consent state, reachability and suppression as annotations."""
    brand_id = values["brand"]
    if by_identity:
        people = Member.objects.filter(identities__kind=values["kind"], identities__value=values["value"])
    else:
        people = Member.objects.filter(pk=values["member"])
    annotations: dict[str, Any] = {
        f"has_{kind}": Exists(Identity.objects.filter(member=OuterRef("pk"), kind=kind))
        for kind in _REACH_IDENTITY.get(channel, [])
    }
    state = ConsentState.objects.filter(
        member=OuterRef("pk"), brand_id=brand_id, purpose_id=values["purpose"], channel=channel
    )
    annotations["state_action"] = Subquery(state.values("action")[:1])
    annotations["state_at"] = Subquery(state.values("occurred_at")[:1])
    annotations["state_guardian"] = Subquery(state.values("by_guardian")[:1])
    if channel in _SUPPRESSION_CHANNELS:
        annotations["suppressed"] = Exists(
            Suppression.objects.filter(
                Q(brand_id=brand_id) | Q(brand__isnull=True),
                channel__in=_SUPPRESSION_CHANNELS[channel],
                value=OuterRef(_REACH_FIELD[channel]),
            )
        )
    return (
        people.annotate(**annotations)
        .order_by("pk")
        .values("pk", "status", "merged_into_id", "birth_date", "phone", "email", *annotations)
    )


def _compiled(by_identity: bool, channel: str) -> tuple[str, list[Any], list[str]]:
    """The decision query's SQL for this shape, compiled once per process: building and
    compiling the ORM expression costs more than running it, on the API's hottest path.
    Returns (sql, parameters with per-call slots, column names)."""
    key = (by_identity, channel)
    if key not in _COMPILED:
        rows = _decision_rows(_SENTINELS, by_identity=by_identity, channel=channel)[:1]
        sql, params = rows.query.sql_with_params()
        by_value = {value: _Slot(name) for name, value in _SENTINELS.items()}
        slots = [by_value.get(param, param) if isinstance(param, int | str) else param for param in params]
        columns = [*rows.query.values_select, *rows.query.annotation_select]
        _COMPILED[key] = (sql, slots, columns)
    return _COMPILED[key]


def can_contact(
    member: Member | int | None,
    brand: Brand | int,
    purpose: Purpose,
    channel: str = NO_CHANNEL,
    *,
    identity: tuple[str, str] | None = None,
) -> ContactDecision:
    """May ``brand`` use this person's data for ``purpose`` on ``channel``, and if not, why.

    One query (two for a merged member: the second asks about the survivor): the member
    with its consent state, reachability and suppression as annotations, so the API's hot
    check costs one round trip. With ``member=None`` and ``identity=(kind, value)`` the
    person is whoever owns that (normalised) identity, found by the same query.
    """
    brand_id = brand if isinstance(brand, int) else brand.pk
    if member is None and identity is None:
        raise TypeError("can_contact needs a member or an identity")
    member_id = None if member is None else member if isinstance(member, int) else member.pk
    values = {
        "brand": brand_id,
        "purpose": purpose.pk,
        "member": member_id,
        "kind": identity[0] if identity else None,
        "value": identity[1] if identity else None,
    }
    if connection.vendor == "postgresql":
        sql, slots, columns = _compiled(member is None, channel)
        with connection.cursor() as cursor:
            cursor.execute(sql, [values[slot] if isinstance(slot, _Slot) else slot for slot in slots])
            found = cursor.fetchone()
        row = dict(zip(columns, found, strict=True)) if found else None
    else:
        row = _decision_rows(values, by_identity=member is None, channel=channel).first()
    if row is None:
        return ContactDecision(False, Reason.NO_CONSENT)
    if row["merged_into_id"] is not None:
        return can_contact(row["merged_into_id"], brand_id, purpose, channel)
    if row["status"] == Member.Status.ERASED:
        return ContactDecision(False, Reason.ERASED)

    reason = _state_reason(row["state_action"], channel)
    as_of = row["state_at"]
    if reason != Reason.ALLOWED:
        return ContactDecision(False, reason, as_of)
    if purpose.is_marketing and row["birth_date"] and row["birth_date"] > minor_cutoff() and not row["state_guardian"]:
        return ContactDecision(False, Reason.MINOR, as_of)
    if channel in _REACH_FIELD and not row[_REACH_FIELD[channel]]:
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if channel in _REACH_IDENTITY and not any(row[f"has_{kind}"] for kind in _REACH_IDENTITY[channel]):
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if row.get("suppressed"):
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

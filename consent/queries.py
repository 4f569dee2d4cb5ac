"""The contact decision, per member and set-based. This is the one consent filter: every
segment, export and API list uses ``contactable_q`` (or its parts, to count a funnel);
single checks use ``can_contact``. A property test keeps the two giving the same answers.

The decision obeys consent first, then the person's preferences for the brand, then
reachability (docs/consent.md "The contact decision"); the reason it gives is the first
check that fails, which is also the funnel step of a segment build that drops the person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, models
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    F,
    FilteredRelation,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, NullIf
from django.db.models.lookups import IsNull, LessThan
from django.utils import timezone

from members.erasure_sql import ErasedValue
from members.models import Brand, Identity, IdentityKind, Member

from .models import NO_CHANNEL, Action, Channel, ConsentEvent, ConsentState, Preference, Purpose, Suppression


class Reason:
    """Why a person may not be contacted, in the order ``can_contact`` checks (docs/consent.md)."""

    ALLOWED = "allowed"
    # Consent (the ledger's state, and who the person is).
    ERASED = "erased"
    NO_CONSENT = "no_consent"
    WITHDRAWN = "withdrawn"
    PENDING_CONFIRMATION = "pending_confirmation"
    MINOR = "minor"
    # The person's preferences for the brand (only for purposes that contact people).
    PREFERENCE_CHANNEL = "preference_channel"
    PAUSED = "paused"
    FREQUENCY_CAP = "frequency_cap"
    QUIET_HOURS = "quiet_hours"
    # Reachability.
    UNREACHABLE = "unreachable"
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


def stood_before(people: Q, field: str) -> Subquery:
    """For an outer ``ConsentEvent``: ``field`` of the event its choice (brand, purpose,
    channel) stood on just before it, among ``people``'s events recorded before it, by the
    projection's order (latest ``occurred_at``, then id). What an undo restores, and what
    the history's first change on a page changed from."""
    return Subquery(
        ConsentEvent.objects.filter(people)
        .filter(
            brand_id=OuterRef("brand_id"),
            purpose_id=OuterRef("purpose_id"),
            channel=OuterRef("channel"),
            pk__lt=OuterRef("pk"),
        )
        .order_by("-occurred_at", "-pk")
        .values(field)[:1]
    )


def _suppressions_of(brand_id: int, channel: str) -> QuerySet[Suppression]:
    """The suppressions of the outer member's contact point for ``channel``: matched by
    keyed hash, computed from the member's phone or e-mail in SQL, because the list keeps
    no clear values (``Suppression``; DESIGN.md ⚑ deletion)."""
    field = _REACH_FIELD[channel]
    return Suppression.objects.filter(
        Q(brand_id=brand_id) | Q(brand__isnull=True),
        channel__in=_SUPPRESSION_CHANNELS[channel],
        value_hash=ErasedValue(_SUPPRESSION_KIND[field], OuterRef(field)),
    )


# The identity kind whose keyed hash a suppression of each member field is kept under
# (consent.models.preferences.SUPPRESSION_HASH_KIND).
_SUPPRESSION_KIND = {"phone": "phone", "email": "email"}


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


# --- Preferences: channel, pause, weekly limit, quiet hours ------------------------------

# Sends logged this long before the time of sending count towards the weekly limit.
CAP_WINDOW = dt.timedelta(days=7)

# The contact log and the brands' default weekly limits are tables of the segments app,
# which writes them when a campaign is sent. The decision reads them through these model
# labels, resolved when it runs (as apps refer to AUTH_USER_MODEL), so that consent never
# imports segments (DESIGN.md: segments sits above consent). Their natural home is consent,
# next to DataUsage; moving them is a migration of its own (docs/consent.md).
CONTACT_LOG_MODEL = "segments.ContactLog"
CONTACT_POLICY_MODEL = "segments.ContactPolicy"


def _model(label: str) -> type[models.Model]:
    return apps.get_model(label)


def weekly_limit(own: int | None, brand_default: int | None) -> int | None:
    """The most messages a person may get from a brand in ``CAP_WINDOW``, or None for no
    limit: their own "messages per week" (0 = paused), else the brand's ``ContactPolicy``,
    else ``CONTACT_DEFAULT_MAX_PER_WEEK``; a default of 0 means no default limit."""
    if own is not None:
        return own
    default = brand_default if brand_default is not None else settings.CONTACT_DEFAULT_MAX_PER_WEEK
    return default or None


def sending_time(at: dt.datetime) -> dt.time:
    """The wall-clock time of a send at ``at`` (aware) for quiet hours. People have no time
    zone of their own yet: it is ``TIME_ZONE``, the clock the privacy center shows."""
    return timezone.localtime(at, timezone.get_default_timezone()).time()


def in_quiet_hours(start: dt.time | None, end: dt.time | None, at: dt.time) -> bool:
    """Quiet hours are ``[start, end)``, running overnight when ``end`` is earlier than
    ``start`` (22:00 until 08:00); none when either is missing or both are equal."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= at < end
    return at >= start or at < end


def _quiet_q(at: dt.time) -> Q:
    """``in_quiet_hours`` as a condition on ``Preference``."""
    same_day = Q(quiet_start__lt=F("quiet_end"), quiet_start__lte=at, quiet_end__gt=at)
    overnight = Q(quiet_start__gt=F("quiet_end")) & (Q(quiet_start__lte=at) | Q(quiet_end__gt=at))
    return same_day | overnight


class ChannelChosen(Func):
    """A preference's channel list (JSON) allows ``channel``: it holds it, or it is empty,
    which means no limit on channels (the privacy center says so). NULL without a list."""

    output_field = BooleanField()  # so also ``conditional``: usable in filter() and Q()

    def __init__(self, channels: str, channel: str) -> None:
        super().__init__(F(channels), output_field=BooleanField())
        self.channel = channel

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        # JSON1: the list is empty, or one of its elements is the channel.
        each = f"EXISTS (SELECT 1 FROM json_each({sql}) AS chosen WHERE chosen.value = %s)"  # noqa: S608 - compiled SQL
        return f"(json_array_length({sql}) = 0 OR {each})", [*params, *params, self.channel]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(jsonb_array_length({sql}) = 0 OR {sql} ? %s)", [*params, *params, self.channel]


def _over_limit(brand_id: int, since: dt.datetime) -> RawSQL:
    """Ids of the members with at least ``weekly_limit`` sends from the brand since
    ``since``: one grouped scan of the contact log joined to the preferences (not a lookup
    per member); the brand's default limit is a scalar subquery, so this costs no query of
    its own."""
    contact_log, policy = _model(CONTACT_LOG_MODEL), _model(CONTACT_POLICY_MODEL)
    contacts, prefs, policies = (
        connection.ops.quote_name(model._meta.db_table) for model in (contact_log, Preference, policy)
    )
    return RawSQL(  # noqa: S611 - table names quoted, values as parameters
        f"""SELECT cl.member_id FROM {contacts} cl
            LEFT JOIN {prefs} p ON p.member_id = cl.member_id AND p.brand_id = %s
            WHERE cl.brand_id = %s AND cl.sent_at >= %s
            GROUP BY cl.member_id, p.max_per_week
            HAVING COUNT(*) >= COALESCE(
                p.max_per_week,
                NULLIF(COALESCE((SELECT cp.max_per_week FROM {policies} cp WHERE cp.brand_id = %s), %s), 0)
            )""",  # noqa: S608 - quoted table names
        (
            brand_id,
            brand_id,
            contact_log._meta.get_field("sent_at").get_db_prep_value(since, connection),
            brand_id,
            settings.CONTACT_DEFAULT_MAX_PER_WEEK,
        ),
    )


def _under_limit(brand_id: int, since: dt.datetime) -> Q:
    """The outer member has fewer sends from the brand since ``since`` than their weekly
    limit (or has none): ``_over_limit`` negated, correlated on the member. For a few
    thousand candidates (a segment build's matched members) it reads only their own sends
    and preference through the member indexes, where ``_over_limit`` groups the brand's
    whole contact log of the window."""
    contact_log, policy = _model(CONTACT_LOG_MODEL), _model(CONTACT_POLICY_MODEL)
    sent = Subquery(
        contact_log.objects.filter(member=OuterRef("pk"), brand_id=brand_id, sent_at__gte=since)
        .order_by()
        .values("member")
        .annotate(n=Count("*"))
        .values("n")
    )
    own = Subquery(Preference.objects.filter(member=OuterRef("pk"), brand_id=brand_id).values("max_per_week")[:1])
    default = Subquery(policy.objects.filter(brand_id=brand_id).values("max_per_week")[:1])
    limit = Coalesce(
        own,
        NullIf(Coalesce(default, Value(settings.CONTACT_DEFAULT_MAX_PER_WEEK)), Value(0)),
        output_field=models.IntegerField(),
    )
    return Q(IsNull(limit, True)) | Q(LessThan(Coalesce(sent, Value(0)), limit))


def preference_q(
    brand: Brand | int,
    channel: str = NO_CHANNEL,
    *,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    weekly: bool = True,
    per_member: bool = False,
) -> Q:
    """Members whose preferences for ``brand`` let a message through on ``channel``: the
    channel chosen (or none chosen), not paused, and (``weekly``) under their weekly limit,
    counted back from ``at`` or else ``now`` (default: the clock); with ``at``, the time of
    sending, also outside their quiet hours. The preference half of ``can_contact``.
    Purposes without a channel contact nobody: no preference applies. ``per_member``
    counts the weekly sends per member (``_under_limit``), for few members (a segment
    build's matches); the default groups the brand's sends once, for many."""
    if channel == NO_CHANNEL:
        return Q()
    brand_id = brand if isinstance(brand, int) else brand.pk
    refuses = Q(max_per_week=0) | ~Q(ChannelChosen("channels", channel))
    if at is not None:
        refuses |= _quiet_q(sending_time(at))
    q = ~Q(Exists(Preference.objects.filter(refuses, member=OuterRef("pk"), brand_id=brand_id)))
    if weekly:
        since = (at or now or timezone.now()) - CAP_WINDOW
        q &= _under_limit(brand_id, since) if per_member else ~Q(pk__in=_over_limit(brand_id, since))
    return q


def _preference_reason(row: dict[str, Any], at: dt.datetime | None) -> str | None:
    """``preference_q`` for one decision row (see ``_decision_rows``)."""
    if row["channel_chosen"] is not None and not row["channel_chosen"]:
        return Reason.PREFERENCE_CHANNEL
    own = row["pref__max_per_week"]
    if own == 0:
        return Reason.PAUSED
    limit = weekly_limit(own, row["brand_limit"])
    if limit is not None and (row["sent"] or 0) >= limit:
        return Reason.FREQUENCY_CAP
    if at is not None and in_quiet_hours(row["pref__quiet_start"], row["pref__quiet_end"], sending_time(at)):
        return Reason.QUIET_HOURS
    return None


# --- The decision, per member -------------------------------------------------------------


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
    "since": dt.datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=dt.UTC),
}
_COMPILED: dict[tuple[bool, str], tuple[str, list[Any], list[str]]] = {}


def _decision_rows(values: dict[str, Any], *, by_identity: bool, channel: str) -> QuerySet[Member]:
    """The member with its consent state, preferences, sends since ``since``, reachability and
    suppression as annotations."""
    brand_id = values["brand"]
    if by_identity:
        people = Member.objects.filter(identities__kind=values["kind"], identities__value=values["value"])
    else:
        people = Member.objects.filter(pk=values["member"])
    fields = ["pk", "status", "merged_into_id", "birth_date", "phone", "email"]
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
        annotations["suppressed"] = Exists(_suppressions_of(brand_id, channel))
    if channel != NO_CHANNEL:
        # At most one preference row per member and brand: a join, not four subqueries.
        people = people.annotate(pref=FilteredRelation("preferences", condition=Q(preferences__brand_id=brand_id)))
        fields += ["pref__max_per_week", "pref__quiet_start", "pref__quiet_end"]
        annotations["channel_chosen"] = ChannelChosen("pref__channels", channel)
        sent = _model(CONTACT_LOG_MODEL).objects.filter(
            member=OuterRef("pk"), brand_id=brand_id, sent_at__gte=values["since"]
        )
        annotations["sent"] = Subquery(sent.order_by().values("member").annotate(n=Count("*")).values("n"))
        policy = _model(CONTACT_POLICY_MODEL).objects.filter(brand_id=brand_id)
        annotations["brand_limit"] = Subquery(policy.values("max_per_week")[:1])
    return people.annotate(**annotations).order_by("pk").values(*fields, *annotations)


def _compiled(by_identity: bool, channel: str) -> tuple[str, list[Any], list[str]]:
    """The decision query's SQL for this shape, compiled once per process: building and
    compiling the ORM expression costs more than running it, on the API's hottest path.
    Returns (sql, parameters with per-call slots, column names)."""
    key = (by_identity, channel)
    if key not in _COMPILED:
        rows = _decision_rows(_SENTINELS, by_identity=by_identity, channel=channel)[:1]
        sql, params = rows.query.sql_with_params()
        by_value = {value: _Slot(name) for name, value in _SENTINELS.items()}
        slots = [
            by_value.get(param, param) if isinstance(param, int | str | dt.datetime) else param for param in params
        ]
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
    at: dt.datetime | None = None,
) -> ContactDecision:
    """May ``brand`` use this person's data for ``purpose`` on ``channel``, and if not, why.

    One query (two for a merged member: the second asks about the survivor): the member
    with its consent state, preferences, recent sends, reachability and suppression as
    annotations, so the API's hot check costs one round trip. With ``member=None`` and
    ``identity=(kind, value)`` the person is whoever owns that (normalised) identity, found
    by the same query. ``at`` (aware) is the time of sending when the caller knows it: quiet
    hours are checked only then, and the weekly count runs back from it (else from now).
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
        "since": (at or timezone.now()) - CAP_WINDOW,
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
        return can_contact(row["merged_into_id"], brand_id, purpose, channel, at=at)
    if row["status"] == Member.Status.ERASED:
        return ContactDecision(False, Reason.ERASED)

    reason = _state_reason(row["state_action"], channel)
    as_of = row["state_at"]
    if reason != Reason.ALLOWED:
        return ContactDecision(False, reason, as_of)
    if purpose.is_marketing and row["birth_date"] and row["birth_date"] > minor_cutoff() and not row["state_guardian"]:
        return ContactDecision(False, Reason.MINOR, as_of)
    if channel != NO_CHANNEL and (preference := _preference_reason(row, at)):
        return ContactDecision(False, preference, as_of)
    if channel in _REACH_FIELD and not row[_REACH_FIELD[channel]]:
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if channel in _REACH_IDENTITY and not any(row[f"has_{kind}"] for kind in _REACH_IDENTITY[channel]):
        return ContactDecision(False, Reason.UNREACHABLE, as_of)
    if row.get("suppressed"):
        return ContactDecision(False, Reason.SUPPRESSED, as_of)
    return ContactDecision(True, Reason.ALLOWED, as_of)


def consent_q(brand: Brand | int, purpose: Purpose, channel: str = NO_CHANNEL, *, now: dt.datetime | None = None) -> Q:
    """Members whose consent allows ``purpose`` on ``channel`` (active, consent state that
    allows it, guardian consent for minors in marketing): the consent half of ``can_contact``
    as a condition on ``Member``, so segment funnels can count it separately. Who is a minor
    is decided as of ``now`` (default: the clock; a segment build passes its start)."""
    brand_id = brand if isinstance(brand, int) else brand.pk
    states = ConsentState.objects.filter(
        member=OuterRef("pk"), brand_id=brand_id, purpose=purpose, channel=channel, action__in=allowed_actions(channel)
    )
    q = Q(status=Member.Status.ACTIVE) & Q(Exists(states))
    if purpose.is_marketing:
        cutoff = minor_cutoff(timezone.localdate(now) if now else None)
        q &= ~(Q(birth_date__gt=cutoff) & ~Q(Exists(states.filter(by_guardian=True))))
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
        q &= ~Q(Exists(_suppressions_of(brand_id, channel)))
    return q


def contactable_q(
    brand: Brand | int,
    purpose: Purpose,
    channel: str = NO_CHANNEL,
    *,
    at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    weekly: bool = True,
) -> Q:
    """``can_contact`` as a condition on ``Member``: consent, preferences (see
    ``preference_q`` for ``at``, ``now`` and ``weekly``) and reachability."""
    return (
        consent_q(brand, purpose, channel)
        & preference_q(brand, channel, at=at, now=now, weekly=weekly)
        & reachable_q(brand, channel)
    )


def contactable_members(
    brand: Brand | int, purpose: Purpose, channel: str = NO_CHANNEL, *, at: dt.datetime | None = None
) -> QuerySet[Member]:
    """Every member ``can_contact`` allows (with the same ``at``), as one query."""
    return Member.objects.filter(contactable_q(brand, purpose, channel, at=at))

"""Writes of the consent domain. ``record_consent`` is the one door into the ledger: the
privacy center, the API, imports, the admin, unsubscribe links, double opt-in and SMS
replies all come through it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Q, When
from django.utils import timezone

from cdp import audit
from members.models import Brand, Member, Store
from members.queries import canonical_member

from . import ledger, signals
from .ledger_batch import NewEvent, append_many
from .models import (
    NO_CHANNEL,
    Action,
    Channel,
    ConsentEvent,
    ConsentState,
    Notice,
    Purpose,
    SourceType,
)

logger = logging.getLogger(__name__)

GRANTING = {Action.GRANTED, Action.REQUESTED, Action.CONFIRMED}
# Plain sets: checked on every write, and Enum.values builds a new list each time.
_ACTIONS = frozenset(Action.values)
_CHANNELS = frozenset(Channel.values)
_SOURCES = frozenset(SourceType.values)
MAX_SOURCE_REF = 200


class ConsentError(ValueError):
    """A consent event that cannot be recorded; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Recorded:
    event: ConsentEvent
    created: bool  # False: the external id was seen before, nothing new was stored
    state_changed: bool


def resolve_purpose(brand: Brand, purpose: Purpose | str) -> Purpose:
    if isinstance(purpose, Purpose):
        if purpose.brand_id != brand.pk:
            raise ConsentError("purpose", f"purpose {purpose.code!r} belongs to another brand")
        return purpose
    found = Purpose.objects.filter(brand=brand, code=purpose, is_active=True).first()
    if found is None:
        raise ConsentError("purpose", f"brand {brand.code!r} has no purpose {purpose!r}")
    return found


def current_notice(brand: Brand, purpose: Purpose, locale: str = "") -> Notice | None:
    """The notice a person is shown for this purpose now: the newest purpose notice in
    their language (else any language), else the newest member agreement or policy."""
    return (
        Notice.objects.filter(brand=brand)
        .filter(Q(kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose) | Q(purpose__isnull=True))
        .annotate(
            is_purpose=Case(When(kind=Notice.Kind.PURPOSE_NOTICE, then=1), default=0),
            same_locale=Case(When(locale=locale, then=1), default=0),
            is_agreement=Case(When(kind=Notice.Kind.MEMBER_AGREEMENT, then=1), default=0),
        )
        .order_by("-is_purpose", "-same_locale", "-is_agreement", "-version", "-published_at")
        .first()
    )


def _validate(
    *,
    brand: Brand,
    purpose: Purpose,
    channel: str,
    action: str,
    occurred_at: dt.datetime,
    notice: Notice | None,
    store: Store | None,
) -> None:
    if action not in _ACTIONS:
        raise ConsentError("action", f"{action!r} is not one of {', '.join(Action.values)}")
    if channel != NO_CHANNEL and channel not in _CHANNELS:
        raise ConsentError("channel", f"{channel!r} is not one of {', '.join(Channel.values)}")
    if not purpose.allows_channel(channel):
        allowed = ", ".join(purpose.channels) or "none"
        raise ConsentError(
            "channel", f"purpose {purpose.code!r} does not use channel {channel!r} (channels: {allowed})"
        )
    if action in (Action.REQUESTED, Action.CONFIRMED) and channel != Channel.EMAIL:
        raise ConsentError("action", f"{action!r} is for e-mail double opt-in only")
    if timezone.is_naive(occurred_at):
        raise ConsentError("occurred_at", "needs a time zone")
    skew = dt.timedelta(seconds=settings.CONSENT_MAX_CLOCK_SKEW_SECONDS)
    if occurred_at > timezone.now() + skew:
        raise ConsentError("occurred_at", f"{occurred_at.isoformat()} is in the future")
    if occurred_at.year < 2000:
        raise ConsentError("occurred_at", f"{occurred_at.isoformat()} is not a plausible time")
    if notice is not None and notice.brand_id != brand.pk:
        raise ConsentError("notice", "the notice belongs to another brand")
    if store is not None and store.brand_id != brand.pk:
        raise ConsentError("store", "the store belongs to another brand")


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
) -> Recorded:
    """Append one consent event to the member's chain and update the projection.

    Idempotent on ``external_id`` (per brand): the same event sent twice is stored once.
    ``occurred_at`` is when the person acted; the state moves only if it is not older than
    the state's, so a late-arriving old event never overrides a newer choice.
    """
    purpose = resolve_purpose(brand, purpose)
    occurred_at = occurred_at or timezone.now()
    if source_type not in _SOURCES:
        raise ConsentError("source", f"{source_type!r} is not a known source")
    member = canonical_member(member)
    if action in GRANTING and member.status == Member.Status.ERASED:
        raise ConsentError("member", "this person's data was erased; consent cannot be granted for them")
    if notice is None:
        notice = current_notice(brand, purpose, member.locale)
        if notice is None and action in GRANTING:
            raise ConsentError("notice", f"brand {brand.code!r} has published no notice for {purpose.code!r}")
    _validate(
        brand=brand,
        purpose=purpose,
        channel=channel,
        action=action,
        occurred_at=occurred_at,
        notice=notice,
        store=store,
    )
    evidence_text = "{}"
    if evidence is not None:
        if not isinstance(evidence, dict):
            raise ConsentError("evidence", "must be an object")
        try:
            evidence_text = ledger.canonical_json(evidence)
        except (TypeError, ValueError):
            raise ConsentError("evidence", "must contain only text, numbers, booleans, lists and objects") from None
    if external_id is not None:
        # No look-up first: the unique (brand, external_id) constraint answers "seen before"
        # for the price of the insert, and the except clause below fetches the stored event.
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
        if action == Action.CONFIRMED:
            with transaction.atomic():
                _check_open_request(member, brand, purpose, channel)
                changed = ledger.append(event)
        elif connection.vendor == "postgresql" and not connection.in_atomic_block:
            # One statement, so its own transaction: no BEGIN/COMMIT round trips.
            changed = ledger.append(event)
        else:
            with transaction.atomic():
                changed = ledger.append(event)
        transaction.on_commit(lambda: signals.consent_changed.send(sender=ConsentEvent, event=event))
    except IntegrityError:
        # Another writer stored the same external id between our check and insert.
        if external_id:
            existing = ConsentEvent.objects.filter(brand=brand, external_id=external_id).first()
            if existing is not None:
                return Recorded(existing, created=False, state_changed=False)
        raise
    return Recorded(event, created=True, state_changed=changed)


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


class BatchConsentError(ConsentError):
    """``ConsentError`` of the batch item at ``index``."""

    def __init__(self, index: int, error: ConsentError) -> None:
        super().__init__(error.field, error.message)
        self.index = index


def record_consents(
    items: list[ConsentInput], *, brand: Brand, source_type: str, source_ref: str = ""
) -> list[Recorded]:
    """``record_consent`` for a batch (the API's up to 1,000 events), all or nothing: the
    same checks, the same idempotency on ``external_id`` (also within the batch), the same
    results, but the ledger is written with ``ledger.append_many`` in a few statements
    instead of one round trip per event. ``consent_changed`` is sent per new event after
    commit. A concurrent writer storing one of the external ids first makes the batch try
    again once (it then finds that event as already recorded)."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _record_batch(items, brand=brand, source_type=source_type, source_ref=source_ref)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_batch(items: list[ConsentInput], *, brand: Brand, source_type: str, source_ref: str) -> list[Recorded]:
    if source_type not in _SOURCES:
        raise ConsentError("source", f"{source_type!r} is not a known source")
    external_ids = [str(i.external_id).strip()[:200] or None if i.external_id is not None else None for i in items]
    seen: dict[str, ConsentEvent | NewEvent] = {
        e.external_id: e
        for e in ConsentEvent.objects.filter(brand=brand, external_id__in=[x for x in external_ids if x])
    }
    notices: dict[tuple[int, str], Notice | None] = {}
    purposes: dict[Any, Purpose] = {}
    new: list[NewEvent] = []
    plan: list[NewEvent | str] = []  # a new event, or the external id of an earlier one
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
            if item.action in GRANTING and member.status == Member.Status.ERASED:
                raise ConsentError("member", "this person's data was erased; consent cannot be granted for them")
            notice = item.notice
            if notice is None:
                pair = (purpose.pk, member.locale)
                if pair not in notices:
                    notices[pair] = current_notice(brand, purpose, member.locale)
                notice = notices[pair]
                if notice is None and item.action in GRANTING:
                    raise ConsentError("notice", f"brand {brand.code!r} has published no notice for {purpose.code!r}")
            occurred_at = item.occurred_at or timezone.now()
            _validate(
                brand=brand, purpose=purpose, channel=item.channel, action=item.action, occurred_at=occurred_at,
                notice=notice, store=item.store,
            )  # fmt: skip
            if item.action == Action.CONFIRMED:
                _check_open_request(member, brand, purpose, item.channel)
            if item.evidence is not None and not isinstance(item.evidence, dict):
                raise ConsentError("evidence", "must be an object")
            try:
                evidence_text = ledger.canonical_json(item.evidence or {})
            except (TypeError, ValueError):
                raise ConsentError("evidence", "must contain only text, numbers, booleans, lists and objects") from None
        except ConsentError as exc:
            raise BatchConsentError(index, exc) from None
        event = NewEvent(
            member_id=member.pk, brand_id=brand.pk, purpose_id=purpose.pk, channel=item.channel,
            action=item.action, occurred_at=occurred_at, source_type=source_type,
            source_ref=(source_ref or "")[:MAX_SOURCE_REF], store_id=item.store.pk if item.store else None,
            notice_id=notice.pk if notice else None, evidence=evidence_text, by_guardian=item.by_guardian,
            external_id=external_id,
        )  # fmt: skip
        if external_id:
            seen[external_id] = event
        new.append(event)
        plan.append(event)
    append_many(new)
    stored = {id(e): _as_event(e) for e in new}
    for event in stored.values():
        transaction.on_commit(lambda event=event: signals.consent_changed.send(sender=ConsentEvent, event=event))
    results = []
    for step in plan:
        if isinstance(step, str):
            earlier = seen[step]
            event = stored[id(earlier)] if isinstance(earlier, NewEvent) else earlier
            results.append(Recorded(event, created=False, state_changed=False))
        else:
            results.append(Recorded(stored[id(step)], created=True, state_changed=step.state_changed))
    return results


def _as_event(new: NewEvent) -> ConsentEvent:
    """The stored event as a model instance (for results and ``consent_changed``)."""
    event = ConsentEvent(
        pk=new.pk, member_id=new.member_id, brand_id=new.brand_id, purpose_id=new.purpose_id, channel=new.channel,
        action=new.action, occurred_at=new.occurred_at, recorded_at=new.recorded_at, source_type=new.source_type,
        source_ref=new.source_ref, store_id=new.store_id, notice_id=new.notice_id, by_guardian=new.by_guardian,
        external_id=new.external_id, evidence=json.loads(new.evidence), seq=new.seq, prev_hash=new.prev_hash,
        hash=new.hash,
    )  # fmt: skip
    event._state.adding = False
    event._state.db = connection.alias
    return event


# --- Projection rebuilds ---------------------------------------------------------------


def _fold_select(member_filter: str) -> str:
    """SELECT of the fold: per canonical member × brand × purpose × channel, the event
    latest by (occurred_at, id). Window functions work on PostgreSQL and SQLite alike."""
    events = ConsentEvent._meta.db_table
    members = Member._meta.db_table
    return f"""
        SELECT canonical, brand_id, purpose_id, channel, action, occurred_at, id, by_guardian FROM (
          SELECT COALESCE(m.merged_into_id, m.id) AS canonical, e.brand_id, e.purpose_id, e.channel,
                 e.action, e.occurred_at, e.id, e.by_guardian,
                 ROW_NUMBER() OVER (
                   PARTITION BY COALESCE(m.merged_into_id, m.id), e.brand_id, e.purpose_id, e.channel
                   ORDER BY e.occurred_at DESC, e.id DESC) AS rn
          FROM {events} e JOIN {members} m ON m.id = e.member_id
          WHERE {member_filter}
        ) ranked WHERE rn = 1
    """  # noqa: S608 - table names and a fixed filter only


def _rebuild(member_filter: str, state_filter: str, params: list[Any]) -> int:
    states = ConsentState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {states} WHERE {state_filter}", params)  # noqa: S608
        cursor.execute(
            f"INSERT INTO {states} (member_id, brand_id, purpose_id, channel, action, occurred_at, event_id, by_guardian) "
            + _fold_select(member_filter),
            params,
        )
        return max(cursor.rowcount, 0)


@transaction.atomic
def rebuild_consent_state(*, member_ids: list[int] | None = None) -> int:
    """Recompute ConsentState from the ledger, set-based: for everyone, or for the people
    (canonical members) given. Readers see the old rows until the transaction commits."""
    if member_ids is None:
        return _rebuild("1 = 1", "1 = 1", [])
    ids = sorted({int(pk) for pk in member_ids})
    if not ids:
        return 0
    marks = ", ".join(["%s"] * len(ids))
    return _rebuild(
        f"COALESCE(m.merged_into_id, m.id) IN ({marks})",
        f"member_id IN ({marks})",
        ids,  # the same ids for the single filter of each statement
    )


def state_differences(limit: int = 20) -> list[str]:
    """Rows where ConsentState and a fresh fold of the ledger disagree (for --check)."""
    states = ConsentState._meta.db_table
    sql = f"""
        SELECT f.canonical, f.purpose_id, f.channel, f.id, s.event_id FROM ({_fold_select("1 = 1")}) f
        LEFT JOIN {states} s ON s.member_id = f.canonical AND s.brand_id = f.brand_id
          AND s.purpose_id = f.purpose_id AND s.channel = f.channel
        WHERE s.event_id IS NULL OR s.event_id <> f.id
    """  # noqa: S608
    extra = f"""
        SELECT COUNT(*) FROM {states} s
    """  # noqa: S608
    out = []
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A whole-ledger comparison is hash-join work. With stale statistics (right after
            # a bulk import) and the usual under-estimate of "rn = 1", PostgreSQL picks a
            # nested loop that probes the states once per folded row: measured > 5 min
            # instead of 0.9 s on 269,000 events. Off for this transaction only.
            cursor.execute("SELECT set_config('enable_nestloop', 'off', true)")
        cursor.execute(sql)
        for canonical, purpose_id, channel, fold_event, state_event in cursor.fetchmany(limit):
            out.append(
                f"member {canonical} purpose {purpose_id} channel {channel or '-'}: "
                f"ledger says event {fold_event}, state says {state_event or 'nothing'}"
            )
        cursor.execute(extra)
        state_rows = cursor.fetchone()[0]
        cursor.execute(f"SELECT COUNT(*) FROM ({_fold_select('1 = 1')}) f")  # noqa: S608
        fold_rows = cursor.fetchone()[0]
    if state_rows != fold_rows and not out:
        out.append(f"{state_rows} state rows but the ledger folds to {fold_rows}: some states have no events")
    return out


# --- Notices -----------------------------------------------------------------------------


@transaction.atomic
def publish_notice(
    *,
    brand: Brand,
    kind: str,
    locale: str,
    title: str,
    body: str,
    purpose: Purpose | None = None,
    url: str = "",
    published_at: dt.datetime | None = None,
) -> Notice:
    """Publish the next version of a notice. Earlier versions stay exactly as they were:
    consent events keep pointing at the text the person saw."""
    if kind not in Notice.Kind.values:
        raise ConsentError("kind", f"{kind!r} is not one of {', '.join(Notice.Kind.values)}")
    if purpose is not None and purpose.brand_id != brand.pk:
        raise ConsentError("purpose", "the purpose belongs to another brand")
    if kind == Notice.Kind.PURPOSE_NOTICE and purpose is None:
        raise ConsentError("purpose", "a purpose notice needs a purpose")
    if not title.strip() or not body.strip():
        raise ConsentError("body", "a notice needs a title and a text")
    # Lock the brand row so two publishers cannot both take the same version number.
    Brand.objects.select_for_update().filter(pk=brand.pk).first()
    latest = Notice.objects.filter(brand=brand, kind=kind, purpose=purpose, locale=locale).order_by("-version").first()
    actor = audit.current_actor()
    notice = Notice.objects.create(
        brand=brand,
        kind=kind,
        purpose=purpose,
        locale=locale,
        version=(latest.version + 1) if latest else 1,
        title=title.strip(),
        body=body,
        url=url,
        published_by=actor.label,
        published_at=published_at or timezone.now(),
    )
    audit.record("notice.published", notice, changes={"version": notice.version, "sha256": notice.sha256})
    return notice


# --- Preferences -------------------------------------------------------------------------

_PREFERENCE_FIELDS = ("channels", "max_per_week", "quiet_start", "quiet_end", "topics", "promotion_types", "language")


def _clean_preferences(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(_PREFERENCE_FIELDS))
    if unknown:
        raise ConsentError(unknown[0], "is not a preference")
    clean: dict[str, Any] = {}
    if "channels" in changes:
        channels = list(dict.fromkeys(changes["channels"] or []))
        bad = [c for c in channels if c not in Channel.values]
        if bad:
            raise ConsentError("channels", f"unknown channel {bad[0]!r}")
        clean["channels"] = channels
    if "max_per_week" in changes:
        value = changes["max_per_week"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 50):
            raise ConsentError("max_per_week", "must be a whole number from 0 to 50, or empty for no limit")
        clean["max_per_week"] = value
    for name in ("quiet_start", "quiet_end"):
        if name in changes:
            value = changes[name]
            if value is not None and not isinstance(value, dt.time):
                raise ConsentError(name, "must be a time of day")
            clean[name] = value
    if "topics" in changes:
        topics = [str(t).strip()[:50] for t in (changes["topics"] or []) if str(t).strip()]
        if len(topics) > 50:
            raise ConsentError("topics", "at most 50 topics")
        clean["topics"] = list(dict.fromkeys(topics))
    if "promotion_types" in changes:
        from .models import Preference

        types = list(dict.fromkeys(changes["promotion_types"] or []))
        bad = [t for t in types if t not in Preference.PromotionType.values]
        if bad:
            raise ConsentError("promotion_types", f"unknown promotion type {bad[0]!r}")
        clean["promotion_types"] = types
    if "language" in changes:
        language = changes["language"] or ""
        if language and language not in dict(settings.LANGUAGES):
            raise ConsentError("language", f"{language!r} is not an offered language")
        clean["language"] = language
    return clean


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.time) else value


@transaction.atomic
def update_preferences(*, member: Member, brand: Brand, source_type: str, source_ref: str = "", **changes: Any) -> Any:
    """Change some of a member's preferences for a brand; the change is kept as history."""
    from .models import Preference, PreferenceChange

    member = canonical_member(member)
    clean = _clean_preferences(changes)
    preference, _ = Preference.objects.select_for_update().get_or_create(member=member, brand=brand)
    diff = {
        name: [_jsonable(getattr(preference, name)), _jsonable(value)]
        for name, value in clean.items()
        if getattr(preference, name) != value
    }
    if not diff:
        return preference
    for name in diff:
        setattr(preference, name, clean[name])
    preference.save()
    PreferenceChange.objects.create(
        preference=preference, source_type=source_type, source_ref=source_ref[:200], changes=diff
    )
    return preference


# --- Suppression list --------------------------------------------------------------------


@transaction.atomic
def add_suppression(*, channel: str, value: str, reason: str, brand: Brand | None = None, note: str = "") -> Any:
    """Put a contact point on the do-not-send list (bounce and complaint handlers, staff).

    The value is normalised like identities, so the set-based consent filter matches it.
    Adding one that is already there returns the existing row."""
    from members.identities import RecordError, normalize_email, normalize_phone

    from .models import Suppression

    if channel not in Channel.values:
        raise ConsentError("channel", f"{channel!r} is not one of {', '.join(Channel.values)}")
    if reason not in Suppression.Reason.values:
        raise ConsentError("reason", f"{reason!r} is not one of {', '.join(Suppression.Reason.values)}")
    try:
        if channel == Channel.EMAIL:
            value = normalize_email(value)
        elif channel in (Channel.SMS, Channel.PHONE):
            value = normalize_phone(value)
        else:
            value = str(value).strip()
    except RecordError as exc:
        raise ConsentError("value", exc.message) from None
    if not value:
        raise ConsentError("value", "is required")
    suppression, created = Suppression.objects.get_or_create(
        brand=brand, channel=channel, value=value, defaults={"reason": reason, "note": note[:200]}
    )
    if created:
        audit.record("suppression.added", suppression, changes={"channel": channel, "reason": reason})
    return suppression

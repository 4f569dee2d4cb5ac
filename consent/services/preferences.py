"""A person's preferences (changed only through here, with a change log) and the
do-not-send list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from cdp import audit
from members.models import Brand, Member
from members.queries import canonical_member

from ..models import (
    Channel,
    Preference,
    PreferenceChange,
    Suppression,
)
from ..models.preferences import suppression_hash
from .recording import ConsentError

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


def contact_point(channel: str, value: str) -> str:
    """A suppressed value in the normal form members' phones and e-mails have (E.164, lower
    case), so the set-based consent filter matches it; raises ``RecordError``."""
    from members.identities import normalize_email, normalize_phone

    if channel in (Channel.SMS, Channel.PHONE):
        return normalize_phone(value)
    if channel == Channel.EMAIL:
        return normalize_email(value)
    return str(value).strip()


@transaction.atomic
def add_suppression(*, channel: str, value: str, reason: str, brand: Brand | None = None, note: str = "") -> Any:
    """Put a contact point on the do-not-send list (bounce and complaint handlers, staff).

    The value is normalised like identities (``contact_point``) and kept as its keyed
    hash with a masked form for staff, never in clear (``Suppression``). Adding one that
    is already there returns the existing row."""
    from members.identities import RecordError

    if channel not in Channel.values:
        raise ConsentError("channel", f"{channel!r} is not one of {', '.join(Channel.values)}")
    if reason not in Suppression.Reason.values:
        raise ConsentError("reason", f"{reason!r} is not one of {', '.join(Suppression.Reason.values)}")
    try:
        value = contact_point(channel, value)
    except RecordError as exc:
        raise ConsentError("value", exc.message) from None
    if not value:
        raise ConsentError("value", "is required")
    suppression, created = Suppression.objects.get_or_create(
        brand=brand,
        channel=channel,
        value_hash=suppression_hash(channel, value),
        defaults={"reason": reason, "note": note[:200], "value": masked_contact_point(channel, value)},
    )
    if created:
        audit.record("suppression.added", suppression, changes={"channel": channel, "reason": reason})
    return suppression


def masked_contact_point(channel: str, value: str) -> str:
    from members.masking import mask_email, mask_phone

    return mask_email(value) if channel == Channel.EMAIL or "@" in value else mask_phone(value)


def suppressions_matching(term: str) -> Any:
    """Suppressions of a contact point typed in any format (the admin's search): the
    term is normalised as a phone and as an e-mail, and looked up by keyed hash."""
    from members.identities import RecordError

    hashes = set()
    for channel in (Channel.SMS, Channel.PHONE, Channel.EMAIL):
        try:
            hashes.add(suppression_hash(channel, contact_point(channel, term)))
        except RecordError:
            continue
    return Suppression.objects.filter(value_hash__in=hashes)

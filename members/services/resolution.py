"""Identity resolution of one store record: find or create the one member behind it,
merging the members it links (DESIGN.md ⚑ "Identity resolution") unless an operator
split them (never-merge pairs, ``members.kept_apart``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q

from cdp import audit

from ..identities import RULE_PRIORITY, ErasedPerson, StoreRecord, erased_keys
from ..kept_apart import Split, split_kept_apart, withhold_contact_points
from ..metrics import refresh_member_metrics
from ..models import Identity, IdentityKind, Member, MergeEvent, StoreMembership
from ..queries import never_merge_pairs
from ..survivorship import membership_changes, observed_values, stored_profile, update_from_record
from .merges import merge_into, oldest, record_kept_apart
from .profile import profile_of

logger = logging.getLogger(__name__)

# PostgreSQL: deadlock_detected, serialization_failure. Both mean "try the transaction again".
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


class ResolutionConflict(Exception):
    """Identities moved while we waited for a lock; the caller retries from the start."""


@dataclass
class Resolution:
    member: Member
    created: bool = False
    merges: list[MergeEvent] = field(default_factory=list)
    # Members the record also names but may not join (never-merge pairs): why, as the
    # "kept apart" MergeEvents.
    kept_apart: list[MergeEvent] = field(default_factory=list)
    changed_fields: list[str] = field(default_factory=list)
    new_identities: int = 0

    @property
    def updated(self) -> bool:
        return not self.created and bool(self.changed_fields or self.new_identities or self.merges)


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError | ResolutionConflict):
        return True
    cause = exc.__cause__
    return isinstance(exc, OperationalError) and getattr(cause, "sqlstate", None) in _RETRYABLE_SQLSTATES


def resolve_store_record(record: StoreRecord) -> Resolution:
    """Find or create the one member behind ``record``, merging members it links.

    Every member sharing any of the record's identities is the same person (DESIGN.md ⚑).
    None → a new member; one → update it; several → merge into the oldest, except members
    kept apart by a never-merge pair (``members.kept_apart``: they keep their identities
    and a "kept apart" MergeEvent explains it). Concurrent writers are serialised by the
    unique (kind, value) constraint and row locks: a loser sees an IntegrityError or finds
    identities moved, and retries from the start inside a savepoint, so this is safe
    inside a caller's larger transaction too.
    """
    attempts = settings.RESOLUTION_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return _resolve(record)
        except (IntegrityError, OperationalError, ResolutionConflict) as exc:
            if not _is_retryable(exc) or attempt == attempts:
                raise
            logger.info("resolve_store_record retry %s after %s", attempt, type(exc).__name__)
    raise AssertionError("unreachable")


def _identity_filter(keys: Sequence[tuple[str, str]]) -> Q:
    q = Q()
    for kind, value in keys:
        q |= Q(kind=kind, value=value)
    return q


def _owners(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    return {
        (kind, value): member_id
        for kind, value, member_id in Identity.objects.filter(_identity_filter(keys)).values_list(
            "kind", "value", "member_id"
        )
    }


def _resolve(record: StoreRecord) -> Resolution:
    keys = record.identity_keys()
    # Erased people's identities are stored as keyed hashes: look for those in the same
    # query, so a store re-sending an erased person's row is refused, not re-created.
    erased = erased_keys(keys)
    owners = _owners([*keys, *erased])
    for key, (kind, _value) in erased.items():
        if key in owners:
            raise ErasedPerson(kind, "belongs to a person whose data was erased at their request; not imported")
    member_ids = sorted(set(owners.values()))
    if not member_ids:
        return _create(record, keys)

    # Lock in id order so two writers never wait on each other in a cycle, then check
    # nobody moved the identities between our read and the lock.
    locked = list(Member.objects.select_for_update().filter(pk__in=member_ids).order_by("pk"))
    if len(locked) != len(member_ids) or any(not m.is_active for m in locked):
        raise ResolutionConflict
    # Where writers really run side by side (row locks exist), make sure nobody moved the
    # identities between our read and the lock; SQLite runs one writer at a time.
    if connection.features.has_select_for_update and _owners(keys) != owners:
        raise ResolutionConflict

    # Only a record naming several members can meet a never-merge pair: one query then.
    pairs = never_merge_pairs(member_ids) if len(locked) > 1 else {}
    split = split_kept_apart(keys, owners, pairs.keys()) if pairs else Split(joined=tuple(member_ids))
    joined = [m for m in locked if m.pk in split.joined]
    survivor = oldest(joined)
    result = Resolution(member=survivor)
    for absorbed in joined:
        if absorbed.pk == survivor.pk:
            continue
        rule, value = _linking_key(keys, owners, absorbed.pk)
        result.merges.append(merge_into(survivor, absorbed, rule=rule, matched_value=value))
    for apart in (m for m in locked if m.pk in split.apart):
        rule, value = _linking_key(keys, owners, apart.pk)
        pair = pairs[frozenset((apart.pk, split.apart[apart.pk]))]
        result.kept_apart.append(record_kept_apart(survivor, apart, pair=pair, rule=rule, matched_value=value))

    missing = [(k, v) for k, v in keys if (k, v) not in owners]
    if missing:
        Identity.objects.bulk_create(
            [Identity(member=survivor, kind=k, value=v, store=record.store) for k, v in missing]
        )
    result.new_identities = len(missing)
    result.changed_fields = _apply_record(survivor, record, withheld=split.withheld)
    if result.changed_fields or result.merges:
        survivor.save()
    store_key = keys[0]  # identity_keys() puts the store member id first
    profile = stored_profile(withhold_contact_points(record.profile(), split.withheld))
    if store_key in owners:
        if _upsert_membership(survivor, record, profile):
            result.changed_fields.append("membership")
    else:
        _create_membership(survivor, record, profile)
        result.changed_fields.append("membership")
    if result.changed_fields or result.new_identities:
        audit.record(
            "member.updated",
            survivor,
            changes={"store": record.store.code, "fields": result.changed_fields, "identities_added": len(missing)},
        )
    if result.merges:
        # The absorbed members' orders moved: their totals must drop too, not wait a night.
        refresh_member_metrics(member_ids=[survivor.pk, *(event.absorbed_id for event in result.merges)])
    return result


def _create(record: StoreRecord, keys: list[tuple[str, str]]) -> Resolution:
    """A person nobody knew: a member with the record's values, identities, membership."""
    member = Member.objects.create(
        **observed_values(record.profile()), attributes=dict(record.attributes), profile_observed_at=record.observed_at
    )
    Identity.objects.bulk_create([Identity(member=member, kind=k, value=v, store=record.store) for k, v in keys])
    # Nobody owned this store member id, so the membership is new too.
    _create_membership(member, record, stored_profile(record.profile()))
    audit.record("member.created", member, changes={"store": record.store.code})
    return Resolution(member=member, created=True, new_identities=len(keys))


def _linking_key(
    keys: Sequence[tuple[str, str]], owners: dict[tuple[str, str], int], member_id: int
) -> tuple[str, str]:
    linking = [key for key in keys if owners.get(key) == member_id]
    linking.sort(key=lambda key: RULE_PRIORITY.index(IdentityKind(key[0])))
    return linking[0]


def _apply_record(member: Member, record: StoreRecord, *, withheld: frozenset[tuple[str, str]]) -> list[str]:
    """The record's profile and attributes on ``member`` (in memory) by the survivorship
    rules, without the contact points of members kept apart (``withheld``); returns the
    names of what changed."""
    update = update_from_record(
        profile=profile_of(member),
        observed_at=member.profile_observed_at,
        attributes=member.attributes,
        record_profile=observed_values(withhold_contact_points(record.profile(), withheld)),
        record_observed_at=record.observed_at,
        record_attributes=record.attributes,
    )
    for name, value in update.fields.items():
        setattr(member, name, value)
    if update.attributes is not None:
        member.attributes = update.attributes
    member.profile_observed_at = update.observed_at  # stored with the save, if any
    return update.changed


def _create_membership(member: Member, record: StoreRecord, profile: dict[str, Any]) -> StoreMembership:
    """``profile``: the record's values as the store's own (``stored_profile``)."""
    return StoreMembership.objects.create(
        member=member,
        store=record.store,
        store_member_id=record.store_member_id,
        joined_at=record.joined_at,
        tier=record.tier,
        points=record.points or 0,
        profile=profile,
        profile_observed_at=record.observed_at if profile else None,
    )


def _upsert_membership(member: Member, record: StoreRecord, profile: dict[str, Any]) -> bool:
    # No get_or_create: its savepoint costs more than the look-up, and the unique
    # (store, store member id) constraint still stops a concurrent duplicate.
    membership = StoreMembership.objects.filter(store=record.store, store_member_id=record.store_member_id).first()
    if membership is None:
        _create_membership(member, record, profile)
        return True
    changes = membership_changes(
        {"member_id": membership.member_id, "joined_at": membership.joined_at, "tier": membership.tier,
         "points": membership.points, "profile": membership.profile,
         "profile_observed_at": membership.profile_observed_at},
        member_id=member.pk, joined_at=record.joined_at, tier=record.tier, points=record.points,
        profile=profile, observed_at=record.observed_at,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(membership, name, value)
    if changes:
        membership.save(update_fields=[*changes, "updated_at"])
    return bool(changes)

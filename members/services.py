"""Writes of the members domain: resolve a store record, merge, unmerge, orders, metrics.

Each public function is one business verb and one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp import audit
from cdp.enqueue import enqueue

from . import signals
from .identities import RULE_PRIORITY, ErasedPerson, StoreRecord, erased_keys, store_member_value
from .models import Identity, IdentityKind, Member, MergeEvent, Order, Store, StoreMembership

logger = logging.getLogger(__name__)

# PostgreSQL: deadlock_detected, serialization_failure. Both mean "try the transaction again".
_RETRYABLE_SQLSTATES = {"40P01", "40001"}


class ResolutionConflict(Exception):
    """Identities moved while we waited for a lock; the caller retries from the start."""


class UnmergeError(Exception):
    pass


@dataclass
class Resolution:
    member: Member
    created: bool = False
    merges: list[MergeEvent] = field(default_factory=list)
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
    None → a new member; one → update it; several → merge into the oldest. Concurrent
    writers are serialised by the unique (kind, value) constraint and row locks: a loser
    sees an IntegrityError or finds identities moved, and retries from the start inside a
    savepoint, so this is safe inside a caller's larger transaction too.
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
        member = Member.objects.create(
            **_profile_values(record), attributes=dict(record.attributes), profile_observed_at=record.observed_at
        )
        Identity.objects.bulk_create([Identity(member=member, kind=k, value=v, store=record.store) for k, v in keys])
        # Nobody owned this store member id, so the membership is new too.
        _create_membership(member, record)
        audit.record("member.created", member, changes={"store": record.store.code})
        return Resolution(member=member, created=True, new_identities=len(keys))

    # Lock in id order so two writers never wait on each other in a cycle, then check
    # nobody moved the identities between our read and the lock.
    locked = list(Member.objects.select_for_update().filter(pk__in=member_ids).order_by("pk"))
    if len(locked) != len(member_ids) or any(not m.is_active for m in locked):
        raise ResolutionConflict
    # Where writers really run side by side (row locks exist), make sure nobody moved the
    # identities between our read and the lock; SQLite runs one writer at a time.
    if connection.features.has_select_for_update and _owners(keys) != owners:
        raise ResolutionConflict

    survivor = min(locked, key=lambda m: (m.created_at, m.pk))
    result = Resolution(member=survivor)
    for absorbed in locked:
        if absorbed.pk == survivor.pk:
            continue
        rule, value = _linking_key(keys, owners, absorbed.pk)
        result.merges.append(_merge(survivor, absorbed, rule=rule, matched_value=value))

    missing = [(k, v) for k, v in keys if (k, v) not in owners]
    if missing:
        Identity.objects.bulk_create(
            [Identity(member=survivor, kind=k, value=v, store=record.store) for k, v in missing]
        )
    result.new_identities = len(missing)
    result.changed_fields = _apply_profile(survivor, _profile_values(record), record.observed_at)
    if record.attributes:
        merged_attrs = {**survivor.attributes, **record.attributes}
        if merged_attrs != survivor.attributes:
            survivor.attributes = merged_attrs
            result.changed_fields.append("attributes")
    if result.changed_fields or result.merges:
        survivor.save()
    store_key = keys[0]  # identity_keys() puts the store member id first
    if store_key in owners:
        if _upsert_membership(survivor, record):
            result.changed_fields.append("membership")
    else:
        _create_membership(survivor, record)
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


def _linking_key(
    keys: Sequence[tuple[str, str]], owners: dict[tuple[str, str], int], member_id: int
) -> tuple[str, str]:
    linking = [key for key in keys if owners.get(key) == member_id]
    linking.sort(key=lambda key: RULE_PRIORITY.index(IdentityKind(key[0])))
    return linking[0]


def _profile_values(record: StoreRecord) -> dict[str, Any]:
    return {k: v for k, v in record.profile().items() if v not in (None, "")}


def _apply_profile(member: Member, values: dict[str, Any], observed_at: dt.datetime | None) -> list[str]:
    """Survivorship: a newer observation overwrites, an older one only fills blanks."""
    newer = member.profile_observed_at is None or (
        observed_at is not None and observed_at >= member.profile_observed_at
    )
    changed = []
    for name, value in values.items():
        if value in (None, ""):
            continue
        current = getattr(member, name)
        if current == value:
            continue
        if current in (None, "") or newer:
            setattr(member, name, value)
            changed.append(name)
    if newer and observed_at is not None and member.profile_observed_at != observed_at:
        member.profile_observed_at = observed_at
    return changed


def _create_membership(member: Member, record: StoreRecord) -> StoreMembership:
    return StoreMembership.objects.create(
        member=member,
        store=record.store,
        store_member_id=record.store_member_id,
        joined_at=record.joined_at,
        tier=record.tier,
        points=record.points or 0,
    )


def _upsert_membership(member: Member, record: StoreRecord) -> bool:
    # No get_or_create: its savepoint costs more than the look-up, and the unique
    # (store, store member id) constraint still stops a concurrent duplicate.
    membership = StoreMembership.objects.filter(store=record.store, store_member_id=record.store_member_id).first()
    if membership is None:
        _create_membership(member, record)
        return True
    changed = []
    if membership.member_id != member.pk:
        membership.member = member
        changed.append("member")
    for name in ("joined_at", "tier", "points"):
        value = getattr(record, name)
        if value not in (None, "") and getattr(membership, name) != value:
            setattr(membership, name, value)
            changed.append(name)
    if changed:
        membership.save(update_fields=[*changed, "updated_at"])
    return bool(changed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def _merge(survivor: Member, absorbed: Member, *, rule: str, matched_value: str) -> MergeEvent:
    """Fold ``absorbed`` into ``survivor``; both are locked by the caller."""
    moved = {
        "identities": list(Identity.objects.filter(member=absorbed).values_list("pk", flat=True)),
        "memberships": list(StoreMembership.objects.filter(member=absorbed).values_list("pk", flat=True)),
        "orders": list(Order.objects.filter(member=absorbed).values_list("pk", flat=True)),
    }
    # Members absorbed earlier by ``absorbed`` now point at the survivor too, so a
    # member's canonical record is always one hop away (COALESCE(merged_into_id, id)),
    # which keeps set-based queries over merged people simple.
    moved["members"] = list(Member.objects.filter(merged_into=absorbed).values_list("pk", flat=True))
    Identity.objects.filter(member=absorbed).update(member=survivor)
    StoreMembership.objects.filter(member=absorbed).update(member=survivor)
    Order.objects.filter(member=absorbed).update(member=survivor)
    Member.objects.filter(merged_into=absorbed).update(merged_into=survivor)

    before = {name: getattr(survivor, name) for name in Member.PROFILE_FIELDS}
    absorbed_values = {name: getattr(absorbed, name) for name in Member.PROFILE_FIELDS}
    _apply_profile(survivor, absorbed_values, absorbed.profile_observed_at)
    profile_changes = {
        name: [_jsonable(before[name]), _jsonable(getattr(survivor, name))]
        for name in Member.PROFILE_FIELDS
        if getattr(survivor, name) != before[name]
    }
    added_attrs = {k: v for k, v in absorbed.attributes.items() if k not in survivor.attributes}
    if added_attrs:
        survivor.attributes = {**survivor.attributes, **added_attrs}
        profile_changes["attributes_added"] = sorted(added_attrs)
    survivor.save()

    absorbed.status = Member.Status.MERGED
    absorbed.merged_into = survivor
    absorbed.save(update_fields=["status", "merged_into", "updated_at"])

    actor = audit.current_actor()
    event = MergeEvent.objects.create(
        survivor=survivor,
        absorbed=absorbed,
        rule=rule,
        matched_value=matched_value,
        moved=moved,
        profile_changes=profile_changes,
        actor_label=actor.label,
    )
    audit.record(
        "member.merged",
        survivor,
        changes={
            "absorbed": absorbed.pk,
            "rule": rule,
            "merge_event": event.pk,
            "moved": {k: len(v) for k, v in moved.items()},
        },
    )
    signals.member_merged.send(sender=Member, event=event)
    return event


@transaction.atomic
def unmerge(merge_event: MergeEvent) -> Member:
    """Undo one merge: the absorbed member comes back with its identities, memberships
    and orders; survivor fields the merge changed go back unless changed since."""
    event = MergeEvent.objects.select_for_update().get(pk=merge_event.pk)
    if event.undone_at is not None:
        raise UnmergeError(
            _("Merge %(id)s was already undone on %(when)s.")
            % {"id": event.pk, "when": f"{timezone.localtime(event.undone_at):%Y-%m-%d %H:%M}"}
        )
    absorbed = Member.objects.select_for_update().get(pk=event.absorbed_id)
    survivor = Member.objects.select_for_update().get(pk=event.survivor_id)
    if absorbed.status != Member.Status.MERGED or absorbed.merged_into_id != survivor.pk:
        raise UnmergeError(
            _("Member #%(absorbed)s is no longer merged into #%(survivor)s.")
            % {"absorbed": absorbed.pk, "survivor": survivor.pk}
        )

    moved = event.moved
    Identity.objects.filter(pk__in=moved.get("identities", [])).update(member=absorbed)
    StoreMembership.objects.filter(pk__in=moved.get("memberships", [])).update(member=absorbed)
    Order.objects.filter(pk__in=moved.get("orders", [])).update(member=absorbed)
    Member.objects.filter(pk__in=moved.get("members", []), merged_into=survivor).update(merged_into=absorbed)

    restored = []
    for name, (before, after) in event.profile_changes.items():
        if name == "attributes_added":
            continue
        if _jsonable(getattr(survivor, name)) == after:
            field_obj = Member._meta.get_field(name)
            setattr(survivor, name, field_obj.to_python(before) if before is not None else None)
            restored.append(name)
    for key in event.profile_changes.get("attributes_added", []):
        if key in survivor.attributes and key in absorbed.attributes:
            survivor.attributes.pop(key)
    survivor.save()

    absorbed.status = Member.Status.ACTIVE
    absorbed.merged_into = None
    absorbed.save(update_fields=["status", "merged_into", "updated_at"])

    actor = audit.current_actor()
    event.undone_at = timezone.now()
    event.undone_by = actor.label
    event.save(update_fields=["undone_at", "undone_by"])
    refresh_member_metrics(member_ids=[survivor.pk, absorbed.pk])
    audit.record(
        "member.unmerged",
        absorbed,
        changes={"survivor": survivor.pk, "merge_event": event.pk, "restored_fields": restored},
    )
    signals.member_unmerged.send(sender=Member, event=event)
    return absorbed


EDITABLE_PROFILE_FIELDS = ("name", "gender", "birth_date", "province", "city", "locale")


@transaction.atomic
def update_member_profile(member: Member, *, fields: Sequence[str]) -> Member:
    """Save a staff correction of profile fields (``member`` carries the new values).

    Contact points are identities and change only through resolution. A correction is
    the newest observation of the profile, so later, older store data cannot undo it.
    """
    fields = [name for name in fields if name in EDITABLE_PROFILE_FIELDS]
    if not fields:
        return member
    stored = Member.objects.select_for_update().get(pk=member.pk)
    changes = {name: [_jsonable(getattr(stored, name)), _jsonable(getattr(member, name))] for name in fields}
    member.profile_observed_at = timezone.now()
    member.save(update_fields=[*fields, "profile_observed_at", "updated_at"])
    audit.record("member.profile_corrected", member, changes=changes)
    return member


def last_merge_of(member: Member) -> MergeEvent | None:
    return MergeEvent.objects.filter(survivor=member, undone_at__isnull=True).order_by("-created_at", "-pk").first()


@transaction.atomic
def record_order(
    *,
    store: Store,
    external_id: str,
    amount: Decimal,
    placed_at: dt.datetime,
    store_member_id: str | None = None,
    member: Member | None = None,
    categories: Iterable[str] = (),
) -> tuple[Order, bool]:
    """Record an order once per (store, order id); a repeat returns the stored one.

    The buyer is ``member`` or the owner of ``store_member_id`` at that store; neither
    means a guest order.
    """
    if member is None and store_member_id:
        identity = (
            Identity.objects.filter(kind=IdentityKind.STORE_MEMBER, value=store_member_value(store.pk, store_member_id))
            .only("member_id")
            .first()
        )
        member_id = identity.member_id if identity else None
    else:
        member_id = member.pk if member else None
    order, created = Order.objects.get_or_create(
        store=store,
        external_id=external_id,
        defaults={
            "member_id": member_id,
            "amount": amount,
            "placed_at": placed_at,
            "categories": list(categories),
        },
    )
    if created and member_id:
        transaction.on_commit(lambda: _schedule_metrics([member_id]))
    return order, created


@dataclass(frozen=True)
class OrderRecord:
    store: Store
    external_id: str
    amount: Decimal
    placed_at: dt.datetime
    store_member_id: str | None = None
    currency: str = "CNY"
    categories: Sequence[str] = ()


@transaction.atomic
def record_orders(records: Sequence[OrderRecord]) -> list[tuple[Order, bool]]:
    """Record a batch of orders, each once per (store, order id), in a few set-based
    statements; returns ``(order, created)`` per distinct order, in input order.

    The buyer is the owner of ``store_member_id`` at that store, or nobody (a guest).
    A repeat (in this batch, an earlier one, or a concurrent writer's) stores nothing.
    """
    unique: dict[tuple[int, str], OrderRecord] = {}
    for record in records:
        unique.setdefault((record.store.pk, record.external_id), record)
    if not unique:
        return []
    member_keys = {
        store_member_value(r.store.pk, r.store_member_id): key for key, r in unique.items() if r.store_member_id
    }
    buyers = {
        member_keys[value]: member_id
        for value, member_id in Identity.objects.filter(
            kind=IdentityKind.STORE_MEMBER, value__in=list(member_keys)
        ).values_list("value", "member_id")
    }
    # One timestamp for the batch: rows carrying it are the ones this call inserted.
    now = timezone.now()
    Order.objects.bulk_create(
        [
            Order(
                store=r.store,
                external_id=r.external_id,
                member_id=buyers.get(key),
                amount=r.amount,
                currency=r.currency,
                placed_at=r.placed_at,
                categories=list(r.categories),
                created_at=now,
            )
            for key, r in unique.items()
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    by_store: dict[int, list[str]] = {}
    for store_id, external_id in unique:
        by_store.setdefault(store_id, []).append(external_id)
    q = Q()
    for store_id, ids in by_store.items():
        q |= Q(store_id=store_id, external_id__in=ids)
    stored = {(o.store_id, o.external_id): o for o in Order.objects.filter(q).select_related("store")}
    result = [(stored[key], stored[key].created_at == now) for key in unique]
    new_buyers = sorted({o.member_id for o, created in result if created and o.member_id})
    if new_buyers:
        transaction.on_commit(lambda: _schedule_metrics(new_buyers))
    return result


def refresh_member_metrics(*, member_ids: Sequence[int] | None = None, now: dt.datetime | None = None) -> int:
    """Recompute order aggregates and lifecycle stages; see ``members.metrics``."""
    from .metrics import refresh_member_metrics as refresh

    return refresh(member_ids=member_ids, now=now)


def _schedule_metrics(member_ids: list[int]) -> None:
    enqueue("members.tasks.refresh_member_metrics", member_ids=member_ids)


@transaction.atomic
def merge_members(first: Member, second: Member, *, rule: str, matched_value: str) -> MergeEvent | None:
    """Merge two members proven to be one person (e.g. one person verified a contact point
    of each in the privacy center) into the older one. None when they already are one."""
    ids = sorted({first.pk, second.pk})
    locked = list(Member.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(ids) < 2 or len(locked) != 2 or any(not m.is_active for m in locked):
        return None
    survivor = min(locked, key=lambda m: (m.created_at, m.pk))
    absorbed = next(m for m in locked if m.pk != survivor.pk)
    event = _merge(survivor, absorbed, rule=rule, matched_value=matched_value)
    refresh_member_metrics(member_ids=[survivor.pk, absorbed.pk])
    return event

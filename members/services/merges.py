"""Merging two members proven to be one person, undoing a merge, and the never-merge
pairs an undo leaves behind.

Every merge writes a MergeEvent (survivor, absorbed, rule, what moved, which profile
values changed) and can be undone (DESIGN.md ⚑ "Identity resolution"). Undoing one
records the two as a never-merge pair: identity resolution keeps them apart, and says
so with a "kept apart" MergeEvent, until an operator removes the pair (``allow_merge``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp import audit

from .. import signals
from ..identities import ERASED_PREFIX, erased_value
from ..masking import mask_identity
from ..metrics import refresh_member_metrics
from ..models import Identity, Member, MergeEvent, NeverMerge, Order, StoreMembership
from ..queries import never_merge_pairs
from ..survivorship import attributes_added_by_merge, is_newer, profile_changes, survivorship_time
from .profile import jsonable, profile_of


class UnmergeError(Exception):
    pass


def oldest(members: list[Member]) -> Member:
    """The member a merge keeps: the oldest record."""
    return min(members, key=lambda m: (m.created_at, m.pk))


def shared_identity(rule: str, value: str) -> dict[str, str]:
    """How a MergeEvent keeps the identity two members shared: its keyed hash (the value
    the identity takes when its person is erased, so nothing in clear outlives them) and
    a masked form for staff to read."""
    if value.startswith(ERASED_PREFIX):
        return {"matched_value": value, "matched_display": ""}
    return {"matched_value": erased_value(rule, value), "matched_display": mask_identity(rule, value)[:255]}


def merge_into(survivor: Member, absorbed: Member, *, rule: str, matched_value: str) -> MergeEvent:
    """Fold ``absorbed`` into ``survivor``; both are locked by the caller."""
    moved = _move_records(survivor, absorbed)
    changes = _fold_profile(survivor, absorbed)
    survivor.save()

    absorbed.status = Member.Status.MERGED
    absorbed.merged_into = survivor
    absorbed.save(update_fields=["status", "merged_into", "updated_at"])

    actor = audit.current_actor()
    event = MergeEvent.objects.create(
        survivor=survivor,
        absorbed=absorbed,
        rule=rule,
        **shared_identity(rule, matched_value),
        moved=moved,
        profile_changes=changes,
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


def _move_records(survivor: Member, absorbed: Member) -> dict[str, list[int]]:
    """Hand the absorbed member's identities, memberships, orders and earlier absorbed
    members to the survivor; returns their ids (for unmerge)."""
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
    return moved


def _fold_profile(survivor: Member, absorbed: Member) -> dict[str, Any]:
    """Apply the absorbed member's profile and attributes to the survivor (in memory) by
    the survivorship rules; returns what changed, as the MergeEvent keeps it."""
    before = profile_of(survivor)
    newer = is_newer(absorbed.profile_observed_at, survivor.profile_observed_at)
    for name, value in profile_changes(before, profile_of(absorbed), newer=newer).items():
        setattr(survivor, name, value)
    survivor.profile_observed_at = survivorship_time(survivor.profile_observed_at, absorbed.profile_observed_at)
    changes: dict[str, Any] = {
        name: [jsonable(before[name]), jsonable(getattr(survivor, name))]
        for name in Member.PROFILE_FIELDS
        if getattr(survivor, name) != before[name]
    }
    added_attrs = attributes_added_by_merge(survivor.attributes, absorbed.attributes)
    if added_attrs:
        survivor.attributes = {**survivor.attributes, **added_attrs}
        changes["attributes_added"] = sorted(added_attrs)
    return changes


@transaction.atomic
def unmerge(merge_event: MergeEvent) -> Member:
    """Undo one merge: the absorbed member comes back with its identities, memberships
    and orders; survivor fields the merge changed go back unless changed since. The two
    become a never-merge pair, so the record that linked them does not merge them again."""
    event = MergeEvent.objects.select_for_update().get(pk=merge_event.pk)
    if not event.is_merge:
        raise UnmergeError(
            _("Event %(id)s is not a merge: the two members were kept apart. Remove their never-merge pair instead.")
            % {"id": event.pk}
        )
    if event.undone_at is not None:
        raise UnmergeError(
            _("Merge %(id)s was already undone on %(when)s.")
            % {"id": event.pk, "when": f"{timezone.localtime(event.undone_at):%Y-%m-%d %H:%M}"}
        )
    absorbed = Member.objects.select_for_update().get(pk=event.absorbed_id)
    survivor = Member.objects.select_for_update().get(pk=event.survivor_id)
    if survivor.status == Member.Status.ERASED:
        # The profile values the merge changed are keyed hashes now: nothing to put back.
        raise UnmergeError(
            _("Member #%(survivor)s was erased: the merge cannot be undone.") % {"survivor": survivor.pk}
        )
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

    restored = _restore_profile(survivor, absorbed, event.profile_changes)
    survivor.save()

    absorbed.status = Member.Status.ACTIVE
    absorbed.merged_into = None
    absorbed.save(update_fields=["status", "merged_into", "updated_at"])

    actor = audit.current_actor()
    event.undone_at = timezone.now()
    event.undone_by = actor.label
    event.save(update_fields=["undone_at", "undone_by"])
    refresh_member_metrics(member_ids=[survivor.pk, absorbed.pk])
    pair = _keep_apart(survivor, absorbed, event=event, by=actor.label)
    audit.record(
        "member.unmerged",
        absorbed,
        changes={
            "survivor": survivor.pk,
            "merge_event": event.pk,
            "restored_fields": restored,
            "never_merge": pair.pk,
        },
    )
    signals.member_unmerged.send(sender=Member, event=event)
    return absorbed


def _restore_profile(survivor: Member, absorbed: Member, changes: dict[str, Any]) -> list[str]:
    """Put back the survivor's values a merge changed, unless changed since (in memory);
    returns the fields restored."""
    restored = []
    for name, (before, after) in changes.items():
        if name == "attributes_added":
            continue
        if jsonable(getattr(survivor, name)) == after:
            field_obj = Member._meta.get_field(name)
            setattr(survivor, name, field_obj.to_python(before) if before is not None else None)
            restored.append(name)
    for key in changes.get("attributes_added", []):
        if key in survivor.attributes and key in absorbed.attributes:
            survivor.attributes.pop(key)
    return restored


def _keep_apart(first: Member, second: Member, *, event: MergeEvent, by: str) -> NeverMerge:
    """The never-merge pair of two members just split (both locked by the caller)."""
    low, high = sorted((first.pk, second.pk))
    pair, created = NeverMerge.objects.get_or_create(
        member_a_id=low, member_b_id=high, defaults={"unmerge_event": event, "created_by": by}
    )
    if created:
        audit.record("member.never_merge_added", pair, changes={"members": [low, high], "merge_event": event.pk})
    return pair


def record_kept_apart(member: Member, apart: Member, *, pair: NeverMerge, rule: str, matched_value: str) -> MergeEvent:
    """Explain a merge refused because ``member`` and ``apart`` are a never-merge pair: a
    "kept apart" MergeEvent (``apart`` keeps ``matched_value``), written once per pair,
    members and identity, so importing a file again changes nothing. Inside the caller's
    transaction, which holds both members locked."""
    shared = shared_identity(rule, matched_value)
    explanation = {
        "outcome": MergeEvent.Outcome.KEPT_APART,
        "kept_apart_by": pair,
        "survivor": member,
        "absorbed": apart,
        "rule": rule,
        "matched_value": shared["matched_value"],
    }
    event = MergeEvent.objects.filter(**explanation).first()
    if event is not None:
        return event
    event = MergeEvent.objects.create(
        **explanation, matched_display=shared["matched_display"], actor_label=audit.current_actor().label
    )
    audit.record(
        "member.kept_apart",
        member,
        changes={"kept_apart_from": apart.pk, "rule": rule, "never_merge": pair.pk, "merge_event": event.pk},
    )
    return event


@transaction.atomic
def allow_merge(pair: NeverMerge) -> None:
    """Remove a never-merge pair: identity resolution may merge the two again (the next
    record linking them does). Audited; the "kept apart" events stay, as history."""
    locked = NeverMerge.objects.select_for_update().filter(pk=pair.pk).first()
    if locked is None:
        return  # removed meanwhile: nothing more to do
    audit.record(
        "member.never_merge_removed",
        locked,
        changes={"members": [locked.member_a_id, locked.member_b_id], "merge_event": locked.unmerge_event_id},
    )
    locked.delete()


def last_merge_of(member: Member) -> MergeEvent | None:
    return (
        MergeEvent.objects.filter(survivor=member, outcome=MergeEvent.Outcome.MERGED, undone_at__isnull=True)
        .order_by("-created_at", "-pk")
        .first()
    )


@transaction.atomic
def merge_members(first: Member, second: Member, *, rule: str, matched_value: str) -> MergeEvent | None:
    """Merge two members proven to be one person (e.g. one person verified a contact point
    of each in the privacy center) into the older one. None when they already are one,
    or when they are a never-merge pair: then ``second`` keeps ``matched_value`` and a
    "kept apart" event says why."""
    ids = sorted({first.pk, second.pk})
    locked = list(Member.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(ids) < 2 or len(locked) != 2 or any(not m.is_active for m in locked):
        return None
    pair = never_merge_pairs(ids).get(frozenset(ids))
    if pair is not None:
        by_pk = {m.pk: m for m in locked}
        record_kept_apart(by_pk[first.pk], by_pk[second.pk], pair=pair, rule=rule, matched_value=matched_value)
        return None
    survivor = oldest(locked)
    absorbed = next(m for m in locked if m.pk != survivor.pk)
    event = merge_into(survivor, absorbed, rule=rule, matched_value=matched_value)
    refresh_member_metrics(member_ids=[survivor.pk, absorbed.pk])
    return event


def forget_merge_values(member_ids: list[int]) -> int:
    """The erasure's part of merge history (DESIGN.md ⚑ deletion): every profile value a
    merge of these members changed becomes its keyed hash, field names stay, so the
    history still says what a merge did, and nobody can read the values back. Inside the
    caller's transaction; returns the number of events changed."""
    events = MergeEvent.objects.select_for_update().filter(
        Q(survivor_id__in=member_ids) | Q(absorbed_id__in=member_ids)
    )
    changed = 0
    for event in events:
        hashed = {
            name: value if name == "attributes_added" else [_hashed(name, item) for item in value]
            for name, value in event.profile_changes.items()
        }
        fields = []
        if hashed != event.profile_changes:
            event.profile_changes = hashed
            fields.append("profile_changes")
        if event.matched_display:
            event.matched_display = ""
            fields.append("matched_display")
        if not event.matched_value.startswith(ERASED_PREFIX):
            event.matched_value = erased_value(event.rule, event.matched_value)
            fields.append("matched_value")
        if fields:
            event.save(update_fields=fields)
            changed += 1
    return changed


def _hashed(name: str, value: Any) -> Any:
    if value in (None, "") or (isinstance(value, str) and value.startswith(ERASED_PREFIX)):
        return value
    return erased_value(f"profile:{name}", str(value))

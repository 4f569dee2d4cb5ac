"""What each webhook says. Built in the publishing task from ids, so the payload reflects
the committed state; each brand sees only its own stores' member ids.

- ``consent.changed``: the event as recorded and the person's resulting state for that
  purpose and channel (read after the sequence number is taken, so a higher sequence
  never carries an older state).
- ``member.merged``: survivor, absorbed member, the rule that linked them; only to the
  brands that knew both people (⚑ brand wall).
- ``member.erased``: the member id; the receiver should erase its copy.
- ``segment.built``: the segment, the build and its funnel.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from consent.models import ConsentEvent, ConsentState
from members.models import Member, MergeEvent, StoreMembership
from segments.models import SegmentBuild

from . import services
from .models import Delivery, EventType


def memberships(member_id: int, brand_id: int) -> list[dict[str, str]]:
    return [
        {"store": code, "member_id": store_member_id}
        for code, store_member_id in StoreMembership.objects.filter(member_id=member_id, store__brand_id=brand_id)
        .order_by("store__code")
        .values_list("store__code", "store_member_id")
    ]


def member_brands(member_id: int) -> list[int]:
    return list(
        StoreMembership.objects.filter(member_id=member_id).values_list("store__brand_id", flat=True).distinct()
    )


@transaction.atomic
def publish(event_type: str, ref: int, extra: dict[str, Any]) -> list[Delivery]:
    # A publishing task run twice (a worker lost after it committed, the broker redelivering)
    # finds the deliveries of its first run by this key and makes none again.
    key = f"{event_type}:{ref}"
    if event_type == EventType.CONSENT_CHANGED:
        return _consent_changed(ref, key)
    if event_type == EventType.MEMBER_MERGED:
        return _member_merged(ref, key)
    if event_type == EventType.MEMBER_ERASED:
        brand_ids = extra.get("brand_ids", [])
        return services.publish(event_type, brand_ids=brand_ids, data={"member": ref}, member_id=ref, key=key)
    if event_type == EventType.SEGMENT_BUILT:
        return _segment_built(ref, key)
    raise ValueError(f"unknown webhook event {event_type!r}")


def _consent_changed(event_id: int, key: str) -> list[Delivery]:
    event = ConsentEvent.objects.select_related("purpose", "store").filter(pk=event_id).first()
    if event is None:
        return []
    member_id = event.member_id
    merged_into = Member.objects.filter(pk=member_id).values_list("merged_into_id", flat=True).first()
    member_id = merged_into or member_id

    def data_for(brand_id: int) -> dict[str, Any]:
        # Called after the sequence number is taken (its row stays locked until commit).
        state = (
            ConsentState.objects.filter(
                member_id=member_id, brand_id=event.brand_id, purpose_id=event.purpose_id, channel=event.channel
            )
            .values("action", "occurred_at")
            .first()
        )
        return {
            "event": {
                "id": event.pk,
                "external_id": event.external_id,
                "purpose": event.purpose.code,
                "channel": event.channel,
                "action": event.action,
                "occurred_at": event.occurred_at.isoformat(),
                "recorded_at": event.recorded_at.isoformat(),
                "source": event.source_type,
                "store": event.store.code if event.store else None,
            },
            "state": {"action": state["action"], "as_of": state["occurred_at"].isoformat()} if state else None,
            "memberships": memberships(member_id, brand_id),
        }

    return services.publish(
        EventType.CONSENT_CHANGED, brand_ids=[event.brand_id], data_for=data_for, member_id=member_id, key=key
    )


def _member_merged(merge_event_id: int, key: str) -> list[Delivery]:
    merge = MergeEvent.objects.filter(pk=merge_event_id).first()
    if merge is None:
        return []
    # ⚑ Brand wall: only a brand that knew both people hears of their merge; to any other
    # brand the merge shows nothing it did not collect itself.
    absorbed_side = set(
        StoreMembership.objects.filter(pk__in=merge.moved.get("memberships", [])).values_list(
            "store__brand_id", flat=True
        )
    )
    survivor_side = set(
        StoreMembership.objects.filter(member_id=merge.survivor_id)
        .exclude(pk__in=merge.moved.get("memberships", []))
        .values_list("store__brand_id", flat=True)
    )
    return services.publish(
        EventType.MEMBER_MERGED,
        brand_ids=sorted(absorbed_side & survivor_side),
        data_for=lambda brand_id: {
            "survivor": merge.survivor_id,
            "absorbed": merge.absorbed_id,
            "rule": merge.rule,
            "merged_at": merge.created_at.isoformat(),
            "undone": merge.undone_at is not None,
            "memberships": memberships(merge.survivor_id, brand_id),
        },
        member_id=merge.survivor_id,
        key=key,
    )


def _segment_built(build_id: int, key: str) -> list[Delivery]:
    build = SegmentBuild.objects.select_related("segment").filter(pk=build_id).first()
    if build is None or build.status != SegmentBuild.Status.SUCCEEDED:
        return []
    segment = build.segment
    return services.publish(
        EventType.SEGMENT_BUILT,
        brand_ids=[segment.brand_id],
        data={
            "segment": segment.slug,
            "build": build.pk,
            "finished_at": build.finished_at.isoformat() if build.finished_at else None,
            "funnel": build.funnel(),
        },
        key=key,
    )

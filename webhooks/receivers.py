"""Turn domain signals into webhook events. The signals are sent inside the transaction of
the change; receivers only write an outbox row in it (the task starts after commit);
the task builds the payload and the deliveries. A brand without subscribers for an event
costs nothing beyond a cached look-up."""

from __future__ import annotations

from typing import Any

from cdp.enqueue import enqueue_on_commit
from consent.signals import consent_appended, consent_changed
from members.signals import member_erased, member_merged
from segments.signals import segment_built

from .models import EventType
from .services import subscribed_anywhere, subscribed_events


def _queue(event_type: str, ref: int, extra: dict[str, Any] | None = None) -> None:
    enqueue_on_commit("webhooks.tasks.publish_event", event_type, ref, extra or {})


def on_consent_changed(sender: Any, event: Any, **kwargs: Any) -> None:
    if EventType.CONSENT_CHANGED in subscribed_events(event.brand_id):
        _queue(EventType.CONSENT_CHANGED, event.pk)


# Events per publishing task when an import appends many: one broker message per batch
# instead of one per event; each event still gets its own delivery and sequence number.
PUBLISH_BATCH = 500


def on_consent_appended(sender: Any, brand_id: int, event_ids: list[int], **kwargs: Any) -> None:
    if not event_ids or EventType.CONSENT_CHANGED not in subscribed_events(brand_id):
        return
    for start in range(0, len(event_ids), PUBLISH_BATCH):
        batch = event_ids[start : start + PUBLISH_BATCH]
        enqueue_on_commit("webhooks.tasks.publish_events", EventType.CONSENT_CHANGED, batch)


def on_member_merged(sender: Any, event: Any, **kwargs: Any) -> None:
    # Imports merge many people: queue nothing when no brand listens for merges.
    if subscribed_anywhere(EventType.MEMBER_MERGED):
        _queue(EventType.MEMBER_MERGED, event.pk)


def on_member_erased(sender: Any, member_id: int, brand_ids: list[int] | None = None, **kwargs: Any) -> None:
    if brand_ids is None:
        from .payloads import member_brands

        brand_ids = member_brands(member_id)
    if any(EventType.MEMBER_ERASED in subscribed_events(pk) for pk in brand_ids):
        _queue(EventType.MEMBER_ERASED, member_id, {"brand_ids": list(brand_ids)})


def on_segment_built(sender: Any, build: Any, **kwargs: Any) -> None:
    if EventType.SEGMENT_BUILT in subscribed_events(build.segment.brand_id):
        _queue(EventType.SEGMENT_BUILT, build.pk)


def connect() -> None:
    consent_changed.connect(on_consent_changed, dispatch_uid="webhooks.consent_changed")
    consent_appended.connect(on_consent_appended, dispatch_uid="webhooks.consent_appended")
    member_merged.connect(on_member_merged, dispatch_uid="webhooks.member_merged")
    member_erased.connect(on_member_erased, dispatch_uid="webhooks.member_erased")
    segment_built.connect(on_segment_built, dispatch_uid="webhooks.segment_built")

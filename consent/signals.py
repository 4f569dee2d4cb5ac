"""Consent signals, each sent inside the transaction that records the events: receivers
write their side effects as outbox rows in it (``cdp.enqueue``), so they commit with the
events or not at all. Receivers must not send anything themselves.

``consent_changed``: one event was recorded (``event``, a ConsentEvent). Webhooks and
receipts listen to it.

``consent_appended``: a bulk writer (a member file import) appended many events at once:
``brand_id``, ``event_ids`` (in the order they were appended) and ``source_type``. Sent
once per chunk instead of a ``consent_changed`` per event, so a million-row
import does not build a model instance per event for receivers that only need its id.
Webhooks listen to it; receipts do not (they are for what a person did themselves, and a
bulk source is never a person).
"""

from django.dispatch import Signal

consent_changed = Signal()
consent_appended = Signal()

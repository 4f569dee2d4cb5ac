"""``consent_changed`` is sent after the transaction that recorded an event commits, with
``event`` (a ConsentEvent). Webhooks and receipts listen to it."""

from django.dispatch import Signal

consent_changed = Signal()

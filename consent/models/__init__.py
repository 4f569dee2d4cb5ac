"""Consent as legal evidence: purposes and notices (``purposes``), the ledger and its
projection (``ledger``), preferences, suppressions and data usage (``preferences``).
Every write goes through ``consent.services``."""

from .ledger import (
    CanonicalJSONField,
    ChainHead,
    Checkpoint,
    CheckpointHead,
    ConsentEvent,
    ConsentState,
    ExternalEventId,
    LedgerVerification,
    canonical_json,
)
from .preferences import DataUsage, Preference, PreferenceChange, Suppression
from .purposes import NO_CHANNEL, Action, AppendOnlyQuerySet, Channel, Notice, NoticeDraft, Purpose, SourceType

__all__ = [
    "NO_CHANNEL",
    "Action",
    "AppendOnlyQuerySet",
    "CanonicalJSONField",
    "ChainHead",
    "Channel",
    "Checkpoint",
    "CheckpointHead",
    "ConsentEvent",
    "ConsentState",
    "DataUsage",
    "ExternalEventId",
    "LedgerVerification",
    "Notice",
    "NoticeDraft",
    "Preference",
    "PreferenceChange",
    "Purpose",
    "SourceType",
    "Suppression",
    "canonical_json",
]

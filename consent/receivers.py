"""Keep consent state right when identity resolution merges or splits people."""

from __future__ import annotations

from typing import Any

from . import services


def member_merged(sender: Any, event: Any, **kwargs: Any) -> None:
    services.rebuild_consent_state(member_ids=[event.survivor_id, event.absorbed_id])


def member_unmerged(sender: Any, event: Any, **kwargs: Any) -> None:
    services.rebuild_consent_state(member_ids=[event.survivor_id, event.absorbed_id])

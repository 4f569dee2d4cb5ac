"""A person's own switch for one purpose and channel (the privacy center's toggle): the
rule of what "on" and "off" mean, kept out of the views."""

from __future__ import annotations

from typing import Any

from members.models import Member

from . import optin, services
from .models import Action, Channel, Notice, Purpose


def set_choice(
    *,
    member: Member,
    purpose: Purpose,
    channel: str,
    on: bool,
    source_type: str,
    notice: Notice | None,
    evidence: dict[str, Any],
) -> str:
    """Turn one switch; returns the state the person now sees: ``"off"`` (withdrawn),
    ``"on"`` (granted) or ``"pending"`` (e-mail marketing needs double opt-in, DESIGN.md ⚑
    "Default deny": a confirmation link is mailed and nothing is granted until it is
    opened). Raises ``services.ConsentError`` when the choice cannot be recorded."""
    common = {"member": member, "brand": purpose.brand, "purpose": purpose, "source_type": source_type}
    if not on:
        services.record_consent(**common, channel=channel, action=Action.WITHDRAWN, notice=notice, evidence=evidence)
        return "off"
    if channel == Channel.EMAIL:
        optin.request_email_opt_in(**common, notice=notice, evidence=evidence)
        return "pending"
    services.record_consent(**common, channel=channel, action=Action.GRANTED, notice=notice, evidence=evidence)
    return "on"

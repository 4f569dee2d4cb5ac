"""The checks on one consent choice before it may enter the ledger, in one place.

``record_consent`` and ``record_consents`` (every source of consent) and the member file
import (its consent columns, for the row-by-row and the COPY path alike, which share
``imports.rows``) ask these functions, so a choice refused by one is refused by the other
for the same reason. They are pure: no database, no clock (callers pass the moment they
judge against) and no exceptions; each returns a ``Problem`` naming the field, or None.
Callers raise their own error from it (``ConsentError``, a row's ``RowProblem``).

Where the ledger's door and a member file have always worded a refusal differently (the
unknown purpose, the unused channel), ``for_file`` keeps each audience's words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from members.models import Brand, Member, Store

from .models import NO_CHANNEL, Action, Channel, Notice, Purpose

GRANTING = frozenset({Action.GRANTED, Action.REQUESTED, Action.CONFIRMED})
# Plain sets: checked on every write, and Enum.values builds a new list each time.
_ACTIONS = frozenset(Action.values)
_CHANNELS = frozenset(Channel.values)
# Actions of e-mail double opt-in (DESIGN.md ⚑ "Default deny": e-mail marketing needs a
# confirmed request).
_DOUBLE_OPT_IN = frozenset({Action.REQUESTED, Action.CONFIRMED})
# Earlier than this, a consent time is a typing error (a year 1900 default, say).
EARLIEST_YEAR = 2000


@dataclass(frozen=True)
class Problem:
    """Why a choice cannot be recorded: ``field`` names what is wrong."""

    field: str
    message: str


def latest_allowed(now: dt.datetime) -> dt.datetime:
    """The latest consent time accepted at ``now``: clocks of stores and phones run a
    little ahead, by at most ``CONSENT_MAX_CLOCK_SKEW_SECONDS``."""
    return now + dt.timedelta(seconds=settings.CONSENT_MAX_CLOCK_SKEW_SECONDS)


def purpose_problem(brand: Brand, purpose: Purpose | None, code: str, *, for_file: bool = False) -> Problem | None:
    """The purpose is one of the brand's active purposes (``purpose``: the one found for
    ``code`` among them, or None)."""
    if purpose is None:
        active = "active " if for_file else ""
        return Problem("purpose", f"brand {brand.code!r} has no {active}purpose {code!r}")
    if purpose.brand_id != brand.pk:
        return Problem("purpose", f"purpose {purpose.code!r} belongs to another brand")
    return None


def channel_problem(purpose: Purpose, channel: str, *, for_file: bool = False) -> Problem | None:
    """The purpose contacts people on this channel; a purpose that contacts nobody takes
    no channel (``Purpose.allows_channel``)."""
    if purpose.allows_channel(channel):
        return None
    allowed = ", ".join(purpose.channels)
    if for_file:
        return Problem(
            "channel",
            f"purpose {purpose.code!r} does not use channel {channel or '(none)'!r} (uses {allowed or 'no channel'})",
        )
    return Problem(
        "channel", f"purpose {purpose.code!r} does not use channel {channel!r} (channels: {allowed or 'none'})"
    )


def notice_problem(brand: Brand, purpose: Purpose, action: str, *, has_notice: bool) -> Problem | None:
    """A grant needs a notice the person was shown (the purpose's or a brand-wide one);
    a withdrawal never does."""
    if has_notice or action not in GRANTING:
        return None
    return Problem("notice", f"brand {brand.code!r} has published no notice for {purpose.code!r}")


def occurred_at_problem(occurred_at: dt.datetime, *, latest: dt.datetime) -> Problem | None:
    """When the person acted: an aware time, not after ``latest`` (``latest_allowed``)
    and not before ``EARLIEST_YEAR``."""
    if occurred_at.utcoffset() is None:
        return Problem("occurred_at", "needs a time zone")
    if occurred_at > latest:
        return Problem("occurred_at", f"{occurred_at.isoformat()} is in the future")
    if occurred_at.year < EARLIEST_YEAR:
        return Problem("occurred_at", f"{occurred_at.isoformat()} is not a plausible time")
    return None


def action_problem(action: str, channel: str) -> Problem | None:
    """A known action on a known channel (or none)."""
    if action not in _ACTIONS:
        return Problem("action", f"{action!r} is not one of {', '.join(Action.values)}")
    if channel != NO_CHANNEL and channel not in _CHANNELS:
        return Problem("channel", f"{channel!r} is not one of {', '.join(Channel.values)}")
    return None


def double_opt_in_problem(action: str, channel: str) -> Problem | None:
    """A request and its confirmation are double opt-in's, which only e-mail has."""
    if action in _DOUBLE_OPT_IN and channel != Channel.EMAIL:
        return Problem("action", f"{action!r} is for e-mail double opt-in only")
    return None


def event_problem(
    *,
    brand: Brand,
    purpose: Purpose,
    channel: str,
    action: str,
    occurred_at: dt.datetime,
    notice: Notice | None,
    store: Store | None,
    member_status: str,
    now: dt.datetime,
) -> Problem | None:
    """Every check ``record_consent`` makes on one event once the purpose is resolved
    and the notice chosen, in the order it has always reported them: the first problem,
    or None."""
    if action in GRANTING and member_status == Member.Status.ERASED:
        return Problem("member", "this person's data was erased; consent cannot be granted for them")
    problem = (
        notice_problem(brand, purpose, action, has_notice=notice is not None)
        or action_problem(action, channel)
        or channel_problem(purpose, channel)
        or double_opt_in_problem(action, channel)
        or occurred_at_problem(occurred_at, latest=latest_allowed(now))
    )
    if problem is not None:
        return problem
    if notice is not None and notice.brand_id != brand.pk:
        return Problem("notice", "the notice belongs to another brand")
    if store is not None and store.brand_id != brand.pk:
        return Problem("store", "the store belongs to another brand")
    return None

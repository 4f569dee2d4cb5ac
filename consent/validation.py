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
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from members.models import Brand, Member, Store

from .models import NO_CHANNEL, Action, Channel, Notice, Purpose, SourceType

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
    """Why a choice cannot be recorded: ``field`` names what is wrong, ``parts`` the parts
    of it at fault when it has some (the missing fields of a ``confirmation``)."""

    field: str
    message: str
    parts: tuple[str, ...] = ()


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


# --- E-mail grants passed on by other systems ------------------------------------------------

# Sources that pass on a choice the person made somewhere else: a store's checkout, a
# platform's member page, a member file, a paper form a staff member types in. Nobody here
# saw the person prove the address is theirs, so an e-mail grant from them is a request
# that we confirm ourselves (DESIGN.md ⚑ "Default deny": e-mail marketing needs a
# `confirmed` event), unless the source proves it ran a double opt-in of its own. Our own
# pages and links ask and confirm in front of the person (``consent.optin``).
RELAYED_SOURCES = frozenset(
    {
        SourceType.STORE.value,
        SourceType.API_KEY.value,
        SourceType.IMPORT_JOB.value,
        SourceType.ADMIN_USER.value,
        SourceType.PAPER_FORM.value,
    }
)
# The proof of a source's own double opt-in, kept as ``evidence["confirmation"]``: when
# the person confirmed, from which IP address, and the id of the confirmation message the
# source sent them. All three, or it proves nothing.
CONFIRMATION_FIELDS = ("confirmed_at", "ip", "message_id")
MAX_MESSAGE_ID = 250
# At most one confirmation mail per person and brand in this time; an e-mail request
# younger than this stands (another grant records nothing and mails nothing).
OPT_IN_MAIL_INTERVAL = dt.timedelta(days=1)


def relays_email_grant(action: str, channel: str, source_type: str) -> bool:
    """An e-mail grant passed on by another system (``RELAYED_SOURCES``)."""
    return channel == Channel.EMAIL and action in GRANTING and source_type in RELAYED_SOURCES


def _given(confirmation: Mapping[str, Any] | None) -> set[str]:
    if not confirmation:
        return set()
    return {name for name in CONFIRMATION_FIELDS if str(confirmation.get(name) or "").strip()}


def _confirmed_at(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None


def confirmation_problem(
    *, action: str, channel: str, source_type: str, confirmation: Mapping[str, Any] | None, latest: dt.datetime
) -> Problem | None:
    """A relayed e-mail grant's proof of the source's own double opt-in: required for
    ``confirmed``, optional for ``granted`` and ``requested`` (with it they are confirmed),
    complete when given (``parts``: the fields missing or wrong), and only on a relayed
    e-mail grant. ``latest``: as for ``occurred_at_problem``."""
    given = _given(confirmation)
    relayed = relays_email_grant(action, channel, source_type)
    if not given:
        if relayed and action == Action.CONFIRMED:
            return Problem(
                "confirmation",
                "'confirmed' needs the proof of the confirmation the source ran: " + ", ".join(CONFIRMATION_FIELDS),
                parts=CONFIRMATION_FIELDS,
            )
        return None
    if not relayed:
        return Problem(
            "confirmation", "only an e-mail grant from a store, the API, an import or staff carries a confirmation"
        )
    missing = tuple(name for name in CONFIRMATION_FIELDS if name not in given)
    if missing:
        return Problem("confirmation", "the proof of a confirmation also needs " + ", ".join(missing), parts=missing)
    assert confirmation is not None
    confirmed_at = _confirmed_at(confirmation["confirmed_at"])
    if confirmed_at is None:
        return Problem("confirmation", "confirmed_at: is not a date and time", parts=("confirmed_at",))
    if (problem := occurred_at_problem(confirmed_at, latest=latest)) is not None:
        return Problem("confirmation", f"confirmed_at: {problem.message}", parts=("confirmed_at",))
    try:
        ipaddress.ip_address(str(confirmation["ip"]).strip())
    except ValueError:
        return Problem("confirmation", f"ip: {confirmation['ip']!r} is not an IP address", parts=("ip",))
    if len(str(confirmation["message_id"]).strip()) > MAX_MESSAGE_ID:
        return Problem("confirmation", f"message_id: is longer than {MAX_MESSAGE_ID} characters", parts=("message_id",))
    return None


@dataclass(frozen=True)
class Incoming:
    """What the ledger records for a choice as it arrives: ``action``, and the source's
    proof of its own double opt-in, for ``evidence["confirmation"]``."""

    action: str
    confirmation: dict[str, str] | None = None


def incoming_choice(*, action: str, channel: str, source_type: str, confirmation: Mapping[str, Any] | None) -> Incoming:
    """A relayed e-mail grant is ``requested`` (we mail the person a link to confirm)
    unless the source proves its own double opt-in: then it is ``confirmed``, the proof
    kept in its canonical form. Anything else stays as it is. Call it once
    ``confirmation_problem`` found nothing."""
    if not relays_email_grant(action, channel, source_type):
        return Incoming(action)
    if not _given(confirmation):
        return Incoming(Action.CONFIRMED.value if action == Action.CONFIRMED else Action.REQUESTED.value)
    assert confirmation is not None
    confirmed_at = _confirmed_at(confirmation["confirmed_at"])
    assert confirmed_at is not None
    proof = {
        "confirmed_at": confirmed_at.astimezone(dt.UTC).isoformat(),
        "ip": str(ipaddress.ip_address(str(confirmation["ip"]).strip())),
        "message_id": str(confirmation["message_id"]).strip(),
    }
    return Incoming(Action.CONFIRMED.value, proof)


def with_confirmation(evidence: dict[str, Any] | None, incoming: Incoming) -> dict[str, Any] | None:
    """The evidence to store: the source's, plus the proof of its confirmation if any."""
    if incoming.confirmation is None or not isinstance(evidence, dict | None):
        return evidence
    return {**(evidence or {}), "confirmation": incoming.confirmation}


@dataclass(frozen=True)
class EmailState:
    """A person's e-mail consent for one purpose of a brand (their ConsentState): the
    action and its time, when its event was recorded, and the event (an id, or an event
    of the batch being judged)."""

    action: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    event: Any


@dataclass(frozen=True)
class OptIn:
    """What happens to a relayed e-mail request: recorded (and its confirmation mail
    queued, or held back by the one-a-day limit), or not recorded because ``standing``
    (the event of the person's confirmed consent or younger open request) answers it."""

    record: bool
    mail: bool = False
    standing: Any = None


class EmailOptIns:
    """Judges relayed e-mail requests in the order they are recorded, from the states
    and last requests read before the first (a single event, an API batch, a chunk of a
    member file): each decision, and every e-mail event recorded, updates them by the
    projection's rule, so a run is judged as if its events were recorded one at a time.

    - The person's e-mail consent is confirmed: a request would suspend a valid
      confirmation until they click again. Nothing is recorded.
    - They were asked less than ``OPT_IN_MAIL_INTERVAL`` ago and have not answered: the
      mail is on its way, and a new request would void its link. Nothing is recorded.
    - Otherwise the request is recorded and its mail queued, unless another request of
      the person to the brand was recorded in that interval: at most one confirmation
      mail per address, brand and day.
    """

    def __init__(
        self,
        states: dict[tuple[int, int], EmailState],
        last_requests: dict[int, dt.datetime],
        *,
        now: dt.datetime,
    ) -> None:
        self.states = states  # (member id, purpose id) → EmailState
        self.last_requests = last_requests  # member id → when their last e-mail request was recorded
        self.now = now

    def request(self, *, member_id: int, purpose_id: int, occurred_at: dt.datetime, event: Any) -> OptIn:
        state = self.states.get((member_id, purpose_id))
        if state is not None and (
            state.action == Action.CONFIRMED
            or (state.action == Action.REQUESTED and self.now - state.recorded_at < OPT_IN_MAIL_INTERVAL)
        ):
            return OptIn(record=False, standing=state.event)
        last = self.last_requests.get(member_id)
        mail = last is None or self.now - last >= OPT_IN_MAIL_INTERVAL
        self.recorded(
            member_id=member_id, purpose_id=purpose_id, action=Action.REQUESTED, occurred_at=occurred_at, event=event
        )
        return OptIn(record=True, mail=mail)

    def recorded(self, *, member_id: int, purpose_id: int, action: str, occurred_at: dt.datetime, event: Any) -> None:
        """An e-mail event was recorded: it moves the state unless it is older than the
        state's (ties go to the later-recorded event, this one)."""
        if action == Action.REQUESTED:
            self.last_requests[member_id] = self.now
        key = (member_id, purpose_id)
        state = self.states.get(key)
        if state is None or occurred_at >= state.occurred_at:
            self.states[key] = EmailState(action, occurred_at, self.now, event)


# --- Quiet hours -------------------------------------------------------------------------

# Quiet hours are a wall-clock time of day where the person lives (the brand's TIME_ZONE),
# not an instant: "HH:MM" or "HH:MM:SS", no offset, no fraction. The API's field, its
# OpenAPI schema (this pattern) and its answers ("HH:MM:SS") all use this one form; before,
# the schema said RFC 3339 ``format: time`` (which needs an offset) while the code took
# "2200", "22:00:00.5" and "22:00:00+08:00" (dropping the offset) and answered without one.
QUIET_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
_QUIET_TIME = re.compile(QUIET_TIME_PATTERN)
QUIET_TIME_MESSAGE = "must be a local time of day as HH:MM or HH:MM:SS (00:00-23:59), without a time zone"


def parse_quiet_time(value: Any) -> dt.time | None:
    """A quiet-hours bound as ``QUIET_TIME_PATTERN`` writes it, or None if it is not one."""
    if not isinstance(value, str) or not _QUIET_TIME.fullmatch(value):
        return None
    return dt.time.fromisoformat(value)


def format_quiet_time(value: dt.time) -> str:
    return value.strftime("%H:%M:%S")

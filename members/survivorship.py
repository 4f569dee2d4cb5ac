"""Survivorship: which profile value wins when a store record updates a member or two
members merge, in one place.

``resolve_store_record`` and ``merge_members`` (``members.services``) apply these rules to
model instances; the COPY path of the member import (``imports.copy_path``) applies them
to its in-memory copy of the members of a chunk. Both call the functions here, so the two
paths cannot drift apart (the differential tests in tests/imports compare them). Pure:
mappings and values in, the changes out; no database, no model instances.

The rules:

* A blank value (None or "") says nothing: it never overwrites.
* An observation at least as new as the member's survivorship time
  (``profile_observed_at``) overwrites what differs; an older one only fills blanks. A
  member that has no survivorship time yet takes any observation as newer.
* The survivorship time moves forward to a newer observation's, never back.
* A store record's attributes replace those of the same name when it is newer, and only
  add new names when it is older; a merge keeps the survivor's and adds only the absorbed
  member's other ones.
* A store record moves the store membership to the person it resolved to and overwrites
  the membership's join time, tier and points with its non-blank values.
* The membership keeps the profile values of its store's records (the brand wall's
  source of truth), by the same rules against the membership's own survivorship time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BLANK = (None, "")


def observed_values(profile: Mapping[str, Any]) -> dict[str, Any]:
    """What a record observed: its values that are not blank."""
    return {name: value for name, value in profile.items() if value not in BLANK}


def is_newer(observed_at: dt.datetime | None, than: dt.datetime | None) -> bool:
    """Whether an observation made at ``observed_at`` overwrites a profile last observed
    at ``than``: when it is not older, or when the profile has no time yet."""
    return than is None or (observed_at is not None and observed_at >= than)


def profile_changes(current: Mapping[str, Any], values: Mapping[str, Any], *, newer: bool) -> dict[str, Any]:
    """The fields of ``current`` that ``values`` (an observation) changes, with their new
    values: every differing one when ``newer``, else only those ``current`` has blank."""
    changes = {}
    for name, value in values.items():
        if value in BLANK:
            continue
        present = current.get(name)
        if present == value:
            continue
        if newer or present in BLANK:
            changes[name] = value
    return changes


def survivorship_time(current: dt.datetime | None, observed_at: dt.datetime | None) -> dt.datetime | None:
    """The profile's survivorship time after an observation made at ``observed_at``."""
    if observed_at is not None and is_newer(observed_at, current):
        return observed_at
    return current


def attributes_after_record(
    current: Mapping[str, Any], incoming: Mapping[str, Any], *, newer: bool = True
) -> dict[str, Any] | None:
    """A member's attributes after a store record's, or None when they stay as they are:
    a ``newer`` observation replaces the values of the same names, an older one only adds
    names the member does not have (as for profile fields)."""
    if not incoming:
        return None
    merged = {**current, **incoming} if newer else {**incoming, **current}
    return merged if merged != current else None


def attributes_added_by_merge(survivor: Mapping[str, Any], absorbed: Mapping[str, Any]) -> dict[str, Any]:
    """The absorbed member's attributes a merge adds to the survivor's: the names the
    survivor does not have."""
    return {name: value for name, value in absorbed.items() if name not in survivor}


@dataclass(frozen=True)
class ProfileUpdate:
    """What one store record changes on one member's profile."""

    fields: dict[str, Any]  # profile field → new value
    attributes: dict[str, Any] | None  # the new attributes, None when unchanged
    observed_at: dt.datetime | None  # the survivorship time once the member is saved

    @property
    def changed(self) -> list[str]:
        """The names of what changed, as the audit row and ``Resolution`` list them."""
        return [*self.fields, "attributes"] if self.attributes is not None else list(self.fields)


def update_from_record(
    *,
    profile: Mapping[str, Any],
    observed_at: dt.datetime | None,
    attributes: Mapping[str, Any],
    record_profile: Mapping[str, Any],
    record_observed_at: dt.datetime | None,
    record_attributes: Mapping[str, Any],
) -> ProfileUpdate:
    """Apply a store record (its profile values, when its source observed them, its
    attributes) to a member's ``profile``, ``observed_at`` and ``attributes``."""
    newer = is_newer(record_observed_at, observed_at)
    return ProfileUpdate(
        fields=profile_changes(profile, record_profile, newer=newer),
        attributes=attributes_after_record(attributes, record_attributes, newer=newer),
        observed_at=survivorship_time(observed_at, record_observed_at),
    )


def stored_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """Observed profile values as a membership's ``profile`` JSON keeps them (dates as ISO
    text)."""
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in observed_values(profile).items()
    }


def membership_changes(
    current: Mapping[str, Any],
    *,
    member_id: int | None,
    joined_at: dt.datetime | None,
    tier: str,
    points: int | None,
    profile: Mapping[str, Any] | None = None,
    observed_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The fields of a store membership (``current``: its ``member_id``, ``joined_at``,
    ``tier``, ``points``, ``profile`` and ``profile_observed_at``) that a store record
    resolved to member ``member_id`` changes, with their new values. ``profile``: the
    record's values (``stored_profile``), observed at ``observed_at``."""
    changes: dict[str, Any] = {}
    if profile:
        current_profile = current.get("profile") or {}
        fields = profile_changes(
            current_profile, profile, newer=is_newer(observed_at, current.get("profile_observed_at"))
        )
        if fields:  # the survivorship time moves with a change, as a member's does
            changes["profile"] = {**current_profile, **fields}
            when = survivorship_time(current.get("profile_observed_at"), observed_at)
            if when != current.get("profile_observed_at"):
                changes["profile_observed_at"] = when
    if current["member_id"] != member_id:
        changes["member_id"] = member_id
    for name, value in (("joined_at", joined_at), ("tier", tier), ("points", points)):
        if value not in BLANK and current[name] != value:
            changes[name] = value
    return changes

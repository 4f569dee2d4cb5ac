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
* A store record's attributes replace those of the same name; a merge keeps the
  survivor's and adds only the absorbed member's other ones.
* A store record moves the store membership to the person it resolved to and overwrites
  the membership's join time, tier and points with its non-blank values.
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


def attributes_after_record(current: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any] | None:
    """A member's attributes after a store record's (same names replaced), or None when
    they stay as they are."""
    if not incoming:
        return None
    merged = {**current, **incoming}
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
        attributes=attributes_after_record(attributes, record_attributes),
        observed_at=survivorship_time(observed_at, record_observed_at),
    )


def membership_changes(
    current: Mapping[str, Any],
    *,
    member_id: int | None,
    joined_at: dt.datetime | None,
    tier: str,
    points: int | None,
) -> dict[str, Any]:
    """The fields of a store membership (``current``: its ``member_id``, ``joined_at``,
    ``tier`` and ``points``) that a store record resolved to member ``member_id`` changes,
    with their new values."""
    changes: dict[str, Any] = {}
    if current["member_id"] != member_id:
        changes["member_id"] = member_id
    for name, value in (("joined_at", joined_at), ("tier", tier), ("points", points)):
        if value not in BLANK and current[name] != value:
            changes[name] = value
    return changes

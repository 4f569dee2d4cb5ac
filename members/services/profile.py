"""A member's profile as values: read for the survivorship rules, corrected by staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp import audit

from ..models import Member

EDITABLE_PROFILE_FIELDS = ("name", "gender", "birth_date", "province", "city", "locale")


def profile_of(member: Member) -> dict[str, Any]:
    """The member's profile fields (``Member.PROFILE_FIELDS``) and their values, as
    ``members.survivorship`` takes them."""
    return {name: getattr(member, name) for name in Member.PROFILE_FIELDS}


def jsonable(value: Any) -> Any:
    """A profile value as merge history and audit rows store it."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


@transaction.atomic
def update_member_profile(member: Member, *, fields: Sequence[str]) -> Member:
    """Save a staff correction of profile fields (``member`` carries the new values).

    Contact points are identities and change only through resolution. A correction is
    the newest observation of the profile, so later, older store data cannot undo it.
    """
    fields = [name for name in fields if name in EDITABLE_PROFILE_FIELDS]
    if not fields:
        return member
    stored = Member.objects.select_for_update().get(pk=member.pk)
    changes = {name: [jsonable(getattr(stored, name)), jsonable(getattr(member, name))] for name in fields}
    member.profile_observed_at = timezone.now()
    member.save(update_fields=[*fields, "profile_observed_at", "updated_at"])
    audit.record("member.profile_corrected", member, changes=changes)
    return member

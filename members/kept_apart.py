"""Never-merge pairs in identity resolution: which of the members a store record links it
may join, and what it leaves with the others. One pure rule: ``resolve_store_record``
applies it to every record, so also to the COPY path of imports, whose rows that link
two people go row by row (``imports.copy_path.planning``); tests/members/test_never_merge.py
checks it alone and through both import paths.

The rule, for a record whose identities several members own, some of them a never-merge
pair (members split by an unmerge, compared as their canonical members):

* The record goes to the member its strongest identity names, in ``RULE_PRIORITY``
  order (the store member id first: the membership and its identity stay together),
  ties in the record's own order.
* Each other member it names joins too, strongest identity first, unless it is paired
  with a member already joining: that member is *kept apart*. Those joining are merged
  into the oldest of them, as always.
* A member kept apart keeps every identity it owns, also the one the record shares with
  it (the first owner keeps it); the record does not take it, and does not copy that
  phone or e-mail onto the profile it goes to.

Pure: identity keys, owners and pairs in, the split out; no database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .identities import RULE_PRIORITY

Key = tuple[str, str]
Pair = frozenset[int]

_RANK = {kind.value: rank for rank, kind in enumerate(RULE_PRIORITY)}
# Profile fields that repeat an identity: the member's preferred phone and e-mail.
_CONTACT_FIELDS = ("phone", "email")  # each named as its IdentityKind


@dataclass(frozen=True)
class Split:
    """What a record may join: ``joined`` members (merged into the oldest of them);
    ``apart``: each member kept apart → the joining member it is paired with;
    ``withheld``: the record's identity keys owned by members kept apart."""

    joined: tuple[int, ...]
    apart: dict[int, int] = field(default_factory=dict)
    withheld: frozenset[Key] = frozenset()


def split_kept_apart(keys: Sequence[Key], owners: Mapping[Key, int], pairs: Collection[Pair]) -> Split:
    """The module's rule for a record's ``keys`` (``owners``: key → its member, canonical)
    and the never-merge ``pairs`` among those members."""
    ranked = sorted(range(len(keys)), key=lambda i: (_RANK.get(keys[i][0], len(_RANK)), i))
    members: list[int] = []
    for index in ranked:
        owner = owners.get(keys[index])
        if owner is not None and owner not in members:
            members.append(owner)
    joined: list[int] = []
    apart: dict[int, int] = {}
    for member in members:
        partner = next((j for j in joined if frozenset((member, j)) in pairs), None)
        if partner is None:
            joined.append(member)
        else:
            apart[member] = partner
    withheld = frozenset(key for key in keys if owners.get(key) in apart)
    return Split(joined=tuple(joined), apart=apart, withheld=withheld)


def withhold_contact_points(profile: Mapping[str, Any], withheld: Collection[Key]) -> dict[str, Any]:
    """A record's profile without the phone or e-mail a member kept apart owns: blank
    values say nothing under survivorship, so the profile the record goes to keeps its own."""
    if not withheld:
        return dict(profile)
    return {
        name: "" if name in _CONTACT_FIELDS and (name, value) in withheld else value for name, value in profile.items()
    }

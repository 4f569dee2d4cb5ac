"""Writes of the members domain, each public function one business verb and one
transaction: resolve a store record (``resolution``), merge, unmerge and let a
never-merge pair merge again (``merges``), correct a profile (``profile``), record orders
and refresh their metrics (``orders``). Which profile value wins is
``members.survivorship``'s to say, which members a record may join
``members.kept_apart``'s. Callers import the verbs from here."""

from __future__ import annotations

from ..metrics import refresh_member_metrics
from .merges import UnmergeError, allow_merge, forget_merge_values, last_merge_of, merge_members, unmerge
from .orders import OrderRecord, record_order, record_orders
from .profile import EDITABLE_PROFILE_FIELDS, update_member_profile
from .resolution import Resolution, ResolutionConflict, resolve_store_record

__all__ = [
    "EDITABLE_PROFILE_FIELDS",
    "OrderRecord",
    "Resolution",
    "ResolutionConflict",
    "UnmergeError",
    "allow_merge",
    "forget_merge_values",
    "last_merge_of",
    "merge_members",
    "record_order",
    "record_orders",
    "refresh_member_metrics",
    "resolve_store_record",
    "unmerge",
    "update_member_profile",
]

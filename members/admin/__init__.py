"""Marketer site for brands, stores, members, orders, merges and never-merge pairs.

Phones and e-mails are masked for staff without ``members.view_pii``: the choice is made
per request in ``get_list_display``, ``get_fields`` and ``get_inlines``, never by a flag
stored on the admin instance (it is shared by every request).

One module per page family; importing them here registers every admin when Django's
autodiscovery imports ``members.admin``. ``MEMBER_SECTIONS`` and ``PiiAuditMixin`` are
what other apps' admins build on.
"""

from __future__ import annotations

from . import brands_stores, merges, never_merge, orders
from .brands_stores import BRAND_CHECKLIST
from .member import MEMBER_SECTIONS, MemberAdmin
from .pii import PiiAuditMixin

__all__ = [
    "BRAND_CHECKLIST",
    "MEMBER_SECTIONS",
    "MemberAdmin",
    "PiiAuditMixin",
    "brands_stores",
    "merges",
    "never_merge",
    "orders",
]

"""Global Privacy Control: a browser that sends ``Sec-GPC: 1`` says "do not sell or share
my data" (https://privacycg.github.io/gpc-spec/). Where a brand honours the signal
(``Brand.honour_gpc``, else ``settings.GPC_JURISDICTIONS`` for its jurisdiction), each of
its purposes flagged ``is_sale_or_sharing`` is withdrawn for the person the signal comes
with, through ``record_consent`` (the ledger, the projection, webhooks through the
outbox), and a new grant of one is refused while the signal is sent.

The signal is the person's standing choice, not a click: it is honoured every time it is
seen and recorded only when it changes something (a grant standing), so a second page
view adds nothing to the ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from members.models import Brand, Member, StoreMembership
from members.queries import canonical_member

from ..models import Action, ConsentEvent, ConsentState, Preference, Purpose, SourceType
from ..validation import GRANTING
from .recording import record_consent

# How a withdrawal by the signal reads in the ledger's evidence.
HEADER = "Sec-GPC"


def honouring_q(prefix: str = "") -> Q:
    """Brands that honour the signal: their own choice, else their jurisdiction's."""
    return Q(**{f"{prefix}honour_gpc": True}) | Q(
        **{f"{prefix}honour_gpc__isnull": True, f"{prefix}jurisdiction__in": settings.GPC_JURISDICTIONS}
    )


def brand_honours_gpc(brand: Brand) -> bool:
    if brand.honour_gpc is not None:
        return brand.honour_gpc
    return brand.jurisdiction in settings.GPC_JURISDICTIONS


def refuses_grant(purpose: Purpose) -> bool:
    """A grant of ``purpose`` made with the signal is refused (see ``honour_gpc``)."""
    return purpose.is_sale_or_sharing and brand_honours_gpc(purpose.brand)


@dataclass
class Honoured:
    """What the signal means for the person: the brands (holding their data) whose sale
    or sharing it turns off, and the withdrawals recorded now (empty once all are off)."""

    brands: list[Brand] = field(default_factory=list)
    withdrawn: list[ConsentEvent] = field(default_factory=list)


def _standing_grants(member_id: int) -> list[ConsentState]:
    return list(
        ConsentState.objects.select_related("brand", "purpose")
        .filter(member_id=member_id, action__in=GRANTING, purpose__is_sale_or_sharing=True)
        .filter(honouring_q("brand__"))
        .order_by("brand_id", "purpose_id", "channel")
    )


def honour_gpc(*, member: Member, evidence: dict[str, Any], occurred_at: dt.datetime | None = None) -> Honoured:
    """Honour the signal for ``member``: withdraw each standing grant of a sale or sharing
    purpose of a brand that honours it, in one transaction, with ``SourceType.GPC`` and
    ``evidence`` (the header, the user agent, when it was received). Two reads when there
    is nothing to withdraw; locks the member only when there is."""
    member = canonical_member(member)
    holding = (
        StoreMembership.objects.filter(member_id=member.pk).values("store__brand_id"),
        ConsentState.objects.filter(member_id=member.pk).values("brand_id"),
        Preference.objects.filter(member_id=member.pk).values("brand_id"),
    )
    brand_q = Q(pk__in=holding[0]) | Q(pk__in=holding[1]) | Q(pk__in=holding[2])
    brands = list(
        Brand.objects.filter(brand_q)
        .filter(honouring_q())
        .filter(pk__in=Purpose.objects.filter(is_sale_or_sharing=True, is_active=True).values("brand_id"))
        .order_by("name")
    )
    if not brands:
        return Honoured()
    if not _standing_grants(member.pk):
        return Honoured(brands=brands)
    with transaction.atomic():
        # Two pages open at once with the signal: one withdraws, the other then finds nothing.
        Member.objects.select_for_update().filter(pk=member.pk).first()
        withdrawn = [
            record_consent(
                member=member, brand=state.brand, purpose=state.purpose, channel=state.channel,
                action=Action.WITHDRAWN, source_type=SourceType.GPC, source_ref=HEADER, evidence=evidence,
                occurred_at=occurred_at,
            ).event
            for state in _standing_grants(member.pk)
        ]  # fmt: skip
    return Honoured(brands=brands, withdrawn=withdrawn)

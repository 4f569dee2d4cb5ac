"""What a rule is compiled against: the brand, one clock, and how order rules are read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

# A condition no member meets. Not ``Q(pk__in=[])``: Django compiles that by raising
# EmptyResultSet, which a queryset turns into "no rows" but ``sql_with_params`` (the
# dry-run count and the build's INSERT … SELECT) does not, so "age = 30.5" was a 500.
NOBODY = Q(pk__isnull=True)
EVERYONE = Q(pk__isnull=False)


@dataclass(frozen=True)
class Context:
    """``now`` is the one clock of a build (its start): every time-relative rule is
    evaluated as of it. ``per_member`` chooses how order rules read orders: per candidate
    through the member's index (few candidates: the usual case, and the default), or by
    grouping all the brand's orders once (rules that leave most of the brand's members as
    candidates; see ``compiler.order_strategy``). Both give the same answers."""

    brand_id: int
    today: dt.date
    now: dt.datetime
    per_member: bool = True

    @classmethod
    def for_brand(cls, brand_id: int, now: dt.datetime | None = None, *, per_member: bool = True) -> Context:
        now = now or timezone.now()
        return cls(brand_id=brand_id, today=timezone.localdate(now), now=now, per_member=per_member)


def start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

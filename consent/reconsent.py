"""Re-consent after a notice changes (issue 25 item 9): who stands on an older version.

A notice's chain is every version, in every language, of the same brand, kind and purpose.
A standing consent (granted or confirmed) rests on the version its event pointed at; when a
new version changes what people agree to, the privacy officer asks those on older versions
again. ``by_version`` gives, per version, how many people stand on it and their share of
all who stand on the chain (the re-consent rate of the newest version is its share);
``standing_before`` the consent states to ask again (three queries, and one);
``standing_on_older_version`` the same question asked of the newest version of every
purpose's notice at once, as a condition a segment rule can correlate with a member."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, Min, OuterRef, QuerySet, Subquery

from .models import Action, ConsentState, Notice

STANDING = (Action.GRANTED, Action.CONFIRMED)


@dataclass(frozen=True)
class VersionShare:
    version: int
    published_at: dt.datetime
    people: int
    share: float  # of the people standing on any version of the chain


def chain(notice: Notice) -> QuerySet[Notice]:
    return Notice.objects.filter(brand_id=notice.brand_id, kind=notice.kind, purpose_id=notice.purpose_id)


def _standing(notice: Notice) -> QuerySet[ConsentState]:
    return ConsentState.objects.filter(
        brand_id=notice.brand_id, action__in=STANDING, event__notice__in=chain(notice).values("pk")
    )


def by_version(notice: Notice) -> list[VersionShare]:
    rows = (
        _standing(notice)
        .values("event__notice__version")
        .annotate(people=Count("member_id", distinct=True))
        .order_by("event__notice__version")
    )
    counts = {row["event__notice__version"]: row["people"] for row in rows}
    total = _standing(notice).values("member_id").distinct().count() if counts else 0
    published = dict(chain(notice).values_list("version").annotate(first=Min("published_at")).order_by("version"))
    return [
        VersionShare(
            version, published[version], counts.get(version, 0), (counts.get(version, 0) / total) if total else 0.0
        )
        for version in sorted(published)
    ]


def standing_before(notice: Notice) -> QuerySet[ConsentState]:
    """The standing consents that rest on a version older than ``notice``'s."""
    return _standing(notice).filter(event__notice__version__lt=notice.version)


def standing_on_older_version(brand_id: int, purpose_codes: Iterable[str]) -> QuerySet[ConsentState]:
    """The standing consents to these purposes (by code) that rest on a version of the
    purpose's notice older than its newest one, in any language: for each purpose, what
    ``standing_before`` gives for its newest notice (tests/segments/test_reconsent_rule.py
    checks that they agree). Set-based: the newest version is a subquery per purpose, so
    the segment rule ``older_notice`` filters this by ``member=OuterRef("pk")``."""
    newest = (
        Notice.objects.filter(brand_id=brand_id, kind=Notice.Kind.PURPOSE_NOTICE, purpose_id=OuterRef("purpose_id"))
        .order_by("-version")
        .values("version")[:1]
    )
    return ConsentState.objects.filter(
        brand_id=brand_id,
        action__in=STANDING,
        purpose__code__in=list(purpose_codes),
        event__notice__brand_id=brand_id,
        event__notice__kind=Notice.Kind.PURPOSE_NOTICE,
        event__notice__purpose_id=F("purpose_id"),
        event__notice__version__lt=Subquery(newest),
    )

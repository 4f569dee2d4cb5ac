"""The dashboard's figures of one brand and period: read from what the nightly refresh
stored plus the period's sums over the daily counts, and cached per brand and period;
and the ledger-wide alert of the last verification, read live."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from cdp.db_router import replica_reads
from cdp.enqueue import enqueue
from consent import verification
from members.models import Brand, Store

from . import queries, services
from .models import BrandFigures

CACHE_VERSION = 3


@dataclass(frozen=True)
class StoreMembers:
    store_id: int
    store: str
    platform: str
    members: int  # now
    joined: int  # memberships that began within the period


@dataclass
class Figures:
    """Every figure of one brand and period: what the cache keeps."""

    stores: list[StoreMembers]
    platforms: dict[str, int]
    overlap: dict[int, int]
    contactable: list[queries.Contactable]
    consent: queries.ConsentWeeks
    capture: list[queries.StoreMonth]
    lifecycle_now: dict[str, int]
    lifecycle: queries.LifecycleHistory
    requests: dict[str, int]
    as_of: dt.datetime  # when the stored figures and daily counts were computed
    reconsent: list[queries.NoticeReconsent] = field(default_factory=list)
    computed_at: dt.datetime = field(default_factory=timezone.now)
    seconds: float = 0.0


def cache_key(brand: Brand, since: dt.datetime, until: dt.datetime) -> str:
    """Per brand and period, and per generation of the brand's stored figures: each
    refresh (``services.refresh_figures``) starts a new generation, so no page shows
    figures cached from before it."""
    generation = cache.get(services.generation_key(brand.pk), 0)
    return f"insights:dashboard:v{CACHE_VERSION}:{brand.pk}:{generation}:{since:%Y%m%d}:{until:%Y%m%d}"


class NotComputedYet(Exception):
    """The brand has no stored figures yet, and a worker is computing them."""


def first_figures(brand: Brand) -> BrandFigures:
    """The stored figures of a brand that has none yet. Computing them reads every member,
    membership and ledger event of the brand (minutes at millions of members: 93 s at 5M in
    bench/README.md "Scale"), far past any page's time-out, so with a worker the refresh is
    queued (once, ``claim_refresh``) and the page says so (``NotComputedYet``). Without a
    worker (the demo, the tests), tasks run in-process and the figures are there at once."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        if services.claim_refresh(brand):
            enqueue("insights.tasks.refresh_figures", brand.pk)
        raise NotComputedYet(brand.pk)
    return services.refresh_figures(brand=brand)


def compute(brand: Brand, since: dt.datetime, until: dt.datetime) -> Figures:
    """The figures from what the nightly refresh stored (``first_figures`` for a brand that
    has none yet), the period's sums over the daily counts, and the live data requests: a
    fixed handful of small queries whatever the number of members."""
    started = time.perf_counter()
    stored = queries.stored_figures(brand) or first_figures(brand)
    data = stored.data
    months = queries.store_months(brand, since, until)
    joined: dict[int, int] = {}
    for month in months:
        joined[month.store_id] = joined.get(month.store_id, 0) + month.joined
    stores = Store.objects.filter(brand=brand).order_by("platform", "name", "pk")
    figures = Figures(
        stores=[
            StoreMembers(pk, name, platform, data["members"].get(str(pk), 0), joined.get(pk, 0))
            for pk, name, platform in stores.values_list("pk", "name", "platform")
        ],
        platforms=data["platforms"],
        overlap={int(k): n for k, n in data["overlap"].items()},
        contactable=[queries.Contactable(*row) for row in data["contactable"]],
        consent=queries.consent_weeks(brand, since, until),
        capture=[month for month in months if month.orders],
        lifecycle_now=data["lifecycle"],
        lifecycle=queries.lifecycle_history(brand, since, until),
        requests=queries.data_requests(brand, since, until),
        as_of=stored.computed_at,
        # Figures stored before the re-consent rates were have none until the next refresh.
        reconsent=[
            queries.NoticeReconsent(**{**n, "versions": [queries.VersionRate(**v) for v in n["versions"]]})
            for n in data.get("reconsent", [])
        ],
    )
    figures.seconds = time.perf_counter() - started
    return figures


def figures_for(brand: Brand, since: dt.datetime, until: dt.datetime) -> Figures:
    """The figures from the cache, computed and stored for ``DASHBOARD_CACHE_SECONDS`` when
    missing. Two people opening the page at once may both compute; that costs time, not
    correctness, and a lock would make the second wait just as long."""
    key = cache_key(brand, since, until)
    figures = cache.get(key)
    if figures is None:
        with replica_reads():  # a dashboard may be a moment behind; the cache keeps it longer anyway
            figures = compute(brand, since, until)
        cache.set(key, figures, settings.DASHBOARD_CACHE_SECONDS)
    return figures


@dataclass(frozen=True)
class LedgerAlert:
    """What the last finished ledger verification found wrong: a broken chain
    (``ledger_error``), a consent state that is not the fold of the ledger
    (``state_differences`` rows, the first described), or both."""

    verified_at: dt.datetime
    ledger_error: str
    state_differences: int
    first_difference: str


def ledger_alert() -> LedgerAlert | None:
    """The last finished verification when it found the ledger broken or the consent
    state different from it; None when all was right or nothing was verified yet.
    Ledger-wide, so not cached with a brand's figures: it comes from consent's own cache
    of the last verification, which a new verification replaces, so the warning neither
    outlives the next good run nor waits for the figures' cache to expire."""
    last = verification.last_finished_verification()
    if last is None or (last.ok and last.projection_ok is not False):
        return None
    differs = last.projection_ok is False
    return LedgerAlert(
        verified_at=last.started_at,
        ledger_error="" if last.ok else last.first_error or "?",
        state_differences=last.projection_differences if differs else 0,
        first_difference=last.projection_first_difference if differs else "",
    )

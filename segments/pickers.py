"""The values the segment builder offers per rule field, from one brand's own data only
(⚑ brand wall): its stores and their platforms, the tiers, cities and provinces its stores'
records gave (``StoreMembership.profile``, never the golden record, which mixes brands),
the categories of its stores' recent orders, its members' topics, its purposes that have a
notice; and the fixed lists (lifecycle stages, genders, promotion types, channels,
languages) with their translated names.

Open lists (cities, tiers, categories, topics) are suggestions read from a bounded sample
through indexes (``SAMPLE`` rows per store, the newest orders first), so the page costs
the same at 10 million members; the builder still takes any other value typed in. They are
cached per brand for ``CACHE_SECONDS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from consent.models import Channel, Notice, Preference, Purpose
from members.models import Brand, Gender, LifecycleStage, Order, Platform, StoreMembership

from .rules.fields import OLDER_NOTICE

SAMPLE = 5000  # rows read per store (memberships, newest orders) or per brand (preferences)
SHOWN = 60  # suggestions per open field, the most frequent first
CACHE_SECONDS = 300

Option = dict[str, str]


def _options(pairs: Iterable[tuple[Any, Any]]) -> list[Option]:
    return [{"value": str(value), "label": str(label)} for value, label in pairs]


def _frequent(counter: Counter[str]) -> list[Option]:
    return [{"value": value, "label": value} for value, _n in counter.most_common(SHOWN)]


def _sampled(brand: Brand, store_ids: list[int]) -> dict[str, list[Option]]:
    """The open lists, from samples read through the (store, store_member_id) and (store,
    placed_at) indexes: a few bounded queries per store."""
    tiers: Counter[str] = Counter()
    cities: Counter[str] = Counter()
    provinces: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for store_id in store_ids:
        rows = (
            StoreMembership.objects.filter(store_id=store_id)
            .order_by("store_id", "store_member_id")
            .values_list("tier", "profile")[:SAMPLE]
        )
        for tier, profile in rows:
            tiers.update([tier] if tier else [])
            profile = profile or {}
            cities.update([profile["city"]] if profile.get("city") else [])
            provinces.update([profile["province"]] if profile.get("province") else [])
        recent = Order.objects.filter(store_id=store_id).order_by("-placed_at").values_list("categories", flat=True)
        for items in recent[:SAMPLE]:
            categories.update(item for item in items or [] if isinstance(item, str) and item)
    topics: Counter[str] = Counter()
    for items in Preference.objects.filter(brand=brand).order_by().values_list("topics", flat=True)[:SAMPLE]:
        topics.update(item for item in items or [] if isinstance(item, str) and item)
    return {
        "tier": _frequent(tiers),
        "city": _frequent(cities),
        "province": _frequent(provinces),
        "category": _frequent(categories),
        "topics": _frequent(topics),
    }


def rule_values(brand: Brand) -> dict[str, dict[str, Any]]:
    """Per rule field that has them: ``{"options": [{"value", "label"}], "closed": bool}``;
    ``closed`` lists are every value there is, open ones suggestions."""
    stores = list(brand.stores.order_by("code").values_list("pk", "code", "name", "platform"))
    key = f"segments:rule-values:{brand.pk}"
    sampled = cache.get(key)
    if sampled is None:
        sampled = _sampled(brand, [pk for pk, *_rest in stores])
        cache.set(key, sampled, CACHE_SECONDS)
    platforms = dict(Platform.choices)
    used = sorted({platform for *_rest, platform in stores})
    with_notice = (
        Purpose.objects.filter(brand=brand, notices__kind=Notice.Kind.PURPOSE_NOTICE)
        .distinct()
        .order_by("code")
        .values_list("code", "name")
    )
    closed = {
        "store": _options((code, f"{name} ({code})") for _pk, code, name, _platform in stores),
        "platform": _options((p, platforms.get(p, p)) for p in used),
        "gender": _options(Gender.choices),
        "lifecycle_stage": _options(LifecycleStage.choices),
        "promotion_types": _options(Preference.PromotionType.choices),
        "preferred_channels": _options(Channel.choices),
        "locale": _options(settings.LANGUAGES),
        OLDER_NOTICE: _options((code, f"{name} ({code})") for code, name in with_notice),
    }
    values = {name: {"options": options, "closed": True} for name, options in closed.items()}
    values.update({name: {"options": options, "closed": False} for name, options in sampled.items()})
    return values

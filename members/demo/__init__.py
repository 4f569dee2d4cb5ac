"""Demo data: two brands, their stores, people who shop in several of them, orders.

Every store record goes through ``resolve_store_record`` like real data, so the demo shows
real unification (and a few real merges). Only orders are bulk-inserted: they carry no
identity, so there is nothing for the resolution service to decide. Deterministic for a
given seed (dates are relative to the moment it runs).

``seed_demo`` returns a summary plus ``people`` (the plan it followed), which
``consent.demo`` uses to give the same people consent histories.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from cdp import audit

from .. import services
from ..models import Brand, Identity, LifecycleStage, Member, MergeEvent, Store, StoreMembership
from .brands import BRANDS, create_brands
from .orders import create_orders
from .people import Unique, make_person
from .records import Planner, resolve

__all__ = ["BRANDS", "seed_demo"]


def seed_demo(*, members: int, seed: int = 42) -> dict[str, Any]:
    """Create the demo brands, stores, people and orders. Returns a summary."""
    rng = random.Random(seed)
    now = timezone.now()
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        stores = create_brands()
        phones, emails = Unique(), Unique()
        people = [make_person(rng, now.date(), phones, emails) for _ in range(members)]
        planner = Planner(stores, rng, now)
        for person in people:
            planner.plan(person)
        for person in people:
            person.record_members = [resolve(*plan) for plan in person.records]
        # A person's own later record may already have merged an earlier member away;
        # orders must go to the member that holds the person now.
        survivors = dict(Member.objects.filter(status=Member.Status.MERGED).values_list("pk", "merged_into_id"))
        for person in people:
            person.record_members = [survivors.get(pk, pk) for pk in person.record_members]
            person.member_id = person.record_members[-1]
        # Orders first, then the late records: their merges move orders between members,
        # as they would in production.
        member_orders, guest_orders = create_orders(people, [s for g in stores.values() for s, _ in g], rng, now)
        for person in people:
            for plan in person.late_records:
                person.member_id = resolve(*plan)
        services.refresh_member_metrics(now=now)
    active = Member.objects.active()
    stage_counts = Counter(active.values_list("lifecycle_stage", flat=True))
    return {
        "brands": Brand.objects.count(),
        "stores": Store.objects.count(),
        "records": sum(len(p.records) + len(p.late_records) for p in people),
        "members": active.count(),
        "multi_store_members": active.annotate(n=Count("memberships__store", distinct=True)).filter(n__gte=2).count(),
        "merges": MergeEvent.objects.count(),
        "identities": dict(sorted(Counter(Identity.objects.values_list("kind", flat=True)).items())),
        "memberships": StoreMembership.objects.count(),
        "orders": member_orders + guest_orders,
        "member_orders": member_orders,
        "guest_orders": guest_orders,
        "lifecycle": {stage.value: stage_counts.get(stage.value, 0) for stage in LifecycleStage},
        "people": people,
    }

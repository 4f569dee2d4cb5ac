"""Demo orders: members' orders on their order days at stores they had joined, and
guests' orders, bulk-inserted (orders carry no identity to resolve)."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from decimal import Decimal

from ..models import Order, Store
from .brands import BRANDS, ID_PREFIX
from .people import Person


def _amount(rng: random.Random, median: int) -> Decimal:
    # Log-normal like real baskets: many small orders, a long tail, clipped to 30–3000.
    cents = round(rng.lognormvariate(math.log(median * 100), 0.7))
    return Decimal(min(300_000, max(3_000, cents))).scaleb(-2)


def create_orders(people: list[Person], stores: list[Store], rng: random.Random, now: dt.datetime) -> tuple[int, int]:
    """Members' and guests' orders, inserted set-based; returns (member, guest) counts."""
    specs = {spec["code"]: spec for spec in BRANDS}
    counters: Counter[int] = Counter()
    orders: list[Order] = []

    def add(store: Store, member_id: int | None, placed_at: dt.datetime) -> None:
        counters[store.pk] += 1
        spec = specs[store.brand.code]
        orders.append(
            Order(
                store=store,
                external_id=f"{ID_PREFIX.get(store.platform, 'O')}{placed_at:%Y%m%d}{counters[store.pk]:07d}",
                member_id=member_id,
                amount=_amount(rng, spec["median_amount"]),
                placed_at=placed_at,
                categories=rng.sample(spec["categories"], k=rng.choice((1, 1, 2))),
                created_at=placed_at,
            )
        )

    for person in people:
        for days in person.order_days:
            placed_at = now - dt.timedelta(days=days, minutes=rng.randint(0, 1439))
            # Only at stores the person had joined by then; the first one always qualifies.
            joined = [i for i, (_, _, values) in enumerate(person.records) if values["joined_at"] <= placed_at]
            index = rng.choice(joined or [0])
            add(person.records[index][0], person.record_members[index], placed_at)
    member_orders = len(orders)
    for _ in range(member_orders // 3):  # guests ("游客"): about a quarter of all orders
        add(rng.choice(stores), None, now - dt.timedelta(days=rng.randint(0, 730), minutes=rng.randint(0, 1439)))
    Order.objects.bulk_create(orders, batch_size=2000)
    return member_orders, len(orders) - member_orders

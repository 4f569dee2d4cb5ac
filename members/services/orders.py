"""Orders: recorded once per (store, order id), one at a time or in batches; a new
order of a member schedules the refresh of their aggregates after the commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cdp.enqueue import enqueue_on_commit

from ..identities import store_member_value
from ..models import Identity, IdentityKind, Member, Order, Store


@transaction.atomic
def record_order(
    *,
    store: Store,
    external_id: str,
    amount: Decimal,
    placed_at: dt.datetime,
    store_member_id: str | None = None,
    member: Member | None = None,
    categories: Iterable[str] = (),
) -> tuple[Order, bool]:
    """Record an order once per (store, order id); a repeat returns the stored one.

    The buyer is ``member`` or the owner of ``store_member_id`` at that store; neither
    means a guest order.
    """
    if member is None and store_member_id:
        identity = (
            Identity.objects.filter(kind=IdentityKind.STORE_MEMBER, value=store_member_value(store.pk, store_member_id))
            .only("member_id")
            .first()
        )
        member_id = identity.member_id if identity else None
    else:
        member_id = member.pk if member else None
    order, created = Order.objects.get_or_create(
        store=store,
        external_id=external_id,
        defaults={
            "member_id": member_id,
            "amount": amount,
            "placed_at": placed_at,
            "categories": list(categories),
        },
    )
    if created and member_id:
        _schedule_metrics([member_id])
    return order, created


@dataclass(frozen=True)
class OrderRecord:
    store: Store
    external_id: str
    amount: Decimal
    placed_at: dt.datetime
    store_member_id: str | None = None
    currency: str = "CNY"
    categories: Sequence[str] = ()


@transaction.atomic
def record_orders(records: Sequence[OrderRecord]) -> list[tuple[Order, bool]]:
    """Record a batch of orders, each once per (store, order id), in a few set-based
    statements; returns ``(order, created)`` per distinct order, in input order.

    The buyer is the owner of ``store_member_id`` at that store, or nobody (a guest).
    A repeat (in this batch, an earlier one, or a concurrent writer's) stores nothing.
    """
    unique: dict[tuple[int, str], OrderRecord] = {}
    for record in records:
        unique.setdefault((record.store.pk, record.external_id), record)
    if not unique:
        return []
    # A buyer may have several orders in the batch: every one of them gets the buyer.
    orders_of: dict[str, list[tuple[int, str]]] = {}
    for key, r in unique.items():
        if r.store_member_id:
            orders_of.setdefault(store_member_value(r.store.pk, r.store_member_id), []).append(key)
    owners = Identity.objects.filter(kind=IdentityKind.STORE_MEMBER, value__in=list(orders_of))
    buyers = {
        key: member_id for value, member_id in owners.values_list("value", "member_id") for key in orders_of[value]
    }
    # One timestamp for the batch: rows carrying it are the ones this call inserted.
    now = timezone.now()
    Order.objects.bulk_create(
        [
            Order(
                store=r.store,
                external_id=r.external_id,
                member_id=buyers.get(key),
                amount=r.amount,
                currency=r.currency,
                placed_at=r.placed_at,
                categories=list(r.categories),
                created_at=now,
            )
            for key, r in unique.items()
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    by_store: dict[int, list[str]] = {}
    for store_id, external_id in unique:
        by_store.setdefault(store_id, []).append(external_id)
    q = Q()
    for store_id, ids in by_store.items():
        q |= Q(store_id=store_id, external_id__in=ids)
    stored = {(o.store_id, o.external_id): o for o in Order.objects.filter(q).select_related("store")}
    result = [(stored[key], stored[key].created_at == now) for key in unique]
    new_buyers = sorted({o.member_id for o, created in result if created and o.member_id})
    if new_buyers:
        _schedule_metrics(new_buyers)
    return result


def _schedule_metrics(member_ids: list[int]) -> None:
    """An outbox row in this transaction: the refresh runs after the commit, never lost."""
    enqueue_on_commit("members.tasks.refresh_member_metrics", member_ids=member_ids)

"""Property tests: grouping does not depend on arrival order; unmerge undoes a merge."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members import services
from members.identities import StoreRecord, store_member_value
from members.models import Brand, Identity, MergeEvent, Store

pytestmark = pytest.mark.django_db

PHONES = [f"1380013800{i}" for i in range(5)]
EMAILS = [f"p{i}@example.com" for i in range(4)]
UNIONIDS = [f"oUnionid{i:010d}" for i in range(3)]

record_strategy = st.fixed_dictionaries(
    {
        "store": st.sampled_from(["a", "b"]),
        "member_id": st.sampled_from([f"M{i}" for i in range(6)]),
        "phone": st.none() | st.sampled_from(PHONES),
        "email": st.none() | st.sampled_from(EMAILS),
        "unionid": st.none() | st.sampled_from(UNIONIDS),
    }
)


def _stores() -> dict[str, Store]:
    brand = Brand.objects.create(code="prop", name="Prop")
    return {
        "a": Store.objects.create(brand=brand, code="prop-a", name="A", platform="tmall"),
        "b": Store.objects.create(brand=brand, code="prop-b", name="B", platform="jd"),
    }


def _resolve_all(stores: dict[str, Store], records: list[dict]) -> list[services.Resolution]:
    return [
        services.resolve_store_record(
            StoreRecord.clean(
                store=stores[r["store"]],
                store_member_id=r["member_id"],
                phone=r["phone"],
                email=r["email"],
                wechat_unionid=r["unionid"],
            )
        )
        for r in records
    ]


def _grouping(stores: dict[str, Store], records: list[dict]) -> frozenset[frozenset[tuple[str, str]]]:
    """The partition of the records' store member ids into members."""
    owner: dict[tuple[str, str], int] = {}
    for r in records:
        value = store_member_value(stores[r["store"]].pk, r["member_id"])
        owner[(r["store"], r["member_id"])] = Identity.objects.get(kind="store_member", value=value).member_id
    groups: dict[int, set[tuple[str, str]]] = {}
    for key, member_id in owner.items():
        groups.setdefault(member_id, set()).add(key)
    return frozenset(frozenset(g) for g in groups.values())


def _expected_components(records: list[dict]) -> frozenset[frozenset[tuple[str, str]]]:
    """Union-find over shared identities: the grouping DESIGN.md's rule defines."""
    parent: dict[object, object] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in records:
        node = ("sm", r["store"], r["member_id"])
        for key in (("p", r["phone"]), ("e", r["email"]), ("u", r["unionid"])):
            if key[1] is not None:
                parent[find(key)] = find(node)
        find(node)
    groups: dict[object, set[tuple[str, str]]] = {}
    for r in records:
        groups.setdefault(find(("sm", r["store"], r["member_id"])), set()).add((r["store"], r["member_id"]))
    return frozenset(frozenset(g) for g in groups.values())


def _in_rolled_back_transaction(fn):
    with transaction.atomic():
        result = fn()
        transaction.set_rollback(True)
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record_strategy, min_size=1, max_size=10), order=st.randoms(use_true_random=False))
def test_grouping_does_not_depend_on_arrival_order(records, order):
    shuffled = list(records)
    order.shuffle(shuffled)

    def run(batch):
        def inner():
            stores = _stores()
            _resolve_all(stores, batch)
            return _grouping(stores, records)

        return _in_rolled_back_transaction(inner)

    first, second = run(records), run(shuffled)
    assert first == second == _expected_components(records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record_strategy, min_size=1, max_size=8), bridge=record_strategy)
def test_unmerge_after_merge_restores_the_grouping(records, bridge):
    def inner():
        stores = _stores()
        _resolve_all(stores, records)
        before = _grouping(stores, records)
        bridge_record = {**bridge, "store": "b", "member_id": "BRIDGE"}
        merges = _resolve_all(stores, [bridge_record])[0].merges
        for event in reversed(merges):
            services.unmerge(event)
        after = _grouping(stores, records)
        undone = MergeEvent.objects.filter(pk__in=[m.pk for m in merges], undone_at__isnull=False).count()
        return before, after, undone, len(merges)

    before, after, undone, merges = _in_rolled_back_transaction(inner)
    assert after == before
    assert undone == merges

"""⚑ Brand wall (DESIGN.md): a brand's key gets only what the brand collected about a
person, and cannot tell whether another brand of the group knows them.

Brand A (``brand``, store ``tmall``) collected a full profile and orders; brand B
(``other_brand``) then sends its own record of the same phone. B's answers must equal,
field for field and status for status, the answers about a stranger."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from members import services
from members.identities import StoreRecord
from members.models import MergeEvent, StoreMembership
from tests.api.receiver import Receiver
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

KNOWN_TO_A = "13800138000"
STRANGER = "13700137000"
VOLATILE = ("id", "created_at", "updated_at")


@pytest.fixture
def known_to_a(brand, tmall):
    """Imported by brand A: name, e-mail, birth date, city, and two orders at A."""
    resolution = services.resolve_store_record(
        StoreRecord.clean(
            store=tmall, store_member_id="A-1", phone=KNOWN_TO_A, email="zhang@example.com", name="张三",
            birth_date=dt.date(1990, 5, 1), city="上海", province="上海",
        )
    )  # fmt: skip
    for n, amount in enumerate((Decimal("300.00"), Decimal("120.50"))):
        services.record_orders(
            [services.OrderRecord(store=tmall, external_id=f"A-O{n}", amount=amount, currency="CNY",
                                  placed_at=dt.datetime(2026, 3, 1 + n, tzinfo=dt.UTC), store_member_id="A-1",
                                  categories=[])]
        )  # fmt: skip
    return resolution.member


def _upsert(client, phone: str, member_id: str):
    return client.post("/api/v1/members/", {"store": "peony-jd", "member_id": member_id, "phone": phone,
                                            "city": "杭州"}, format="json")  # fmt: skip


def _shape(body: dict) -> dict:
    """The answer without what differs for any two people (ids and times)."""
    member = {k: v for k, v in body["member"].items() if k not in VOLATILE}
    member["memberships"] = [{k: v for k, v in m.items() if k != "member_id"} for m in member["memberships"]]
    return {**body, "member": member}


def test_another_brands_record_of_a_known_person_answers_as_for_a_stranger(other_api, known_to_a):
    assert other_api.get("/api/v1/members/", {"phone": KNOWN_TO_A}).json() == {"results": []}

    known = _upsert(other_api, KNOWN_TO_A, "B-1")
    stranger = _upsert(other_api, STRANGER, "B-2")

    assert known.status_code == stranger.status_code == 201
    assert _shape(known.json()) == {**_shape(stranger.json()), "member": {
        **_shape(stranger.json())["member"], "phone": "+86" + KNOWN_TO_A}}  # fmt: skip
    member = known.json()["member"]
    # Nothing brand A collected: no name, e-mail, birth date, A's city, A's orders.
    assert member["name"] == "" and member["email"] == "" and member["birth_date"] is None
    assert member["city"] == "杭州" and member["province"] == ""
    assert member["order_count"] == 0 and Decimal(member["total_spent"]) == 0 and member["last_order_at"] is None
    assert member["lifecycle_stage"] == "prospect"
    assert [m["store"] for m in member["memberships"]] == ["peony-jd"]
    # OneID still links them: one person, both memberships.
    assert member["id"] == known_to_a.pk
    assert StoreMembership.objects.filter(member=known_to_a).count() == 2

    # Reads by id and by phone: the same brand view.
    for body in (
        other_api.get(f"/api/v1/members/{known_to_a.pk}/").json(),
        other_api.get("/api/v1/members/", {"phone": KNOWN_TO_A}).json()["results"][0],
    ):
        assert body["name"] == "" and body["email"] == "" and body["order_count"] == 0
        assert body["city"] == "杭州"


def test_each_brand_sees_its_own_profile_values_and_orders(api, other_api, known_to_a):
    _upsert(other_api, KNOWN_TO_A, "B-1")
    ours = api.get(f"/api/v1/members/{known_to_a.pk}/").json()
    assert ours["name"] == "张三" and ours["email"] == "zhang@example.com" and ours["birth_date"] == "1990-05-01"
    assert ours["city"] == "上海"  # brand B's newer 杭州 is B's, not A's
    assert ours["order_count"] == 2 and Decimal(ours["total_spent"]) == Decimal("420.50")
    assert [m["store"] for m in ours["memberships"]] == ["lotus-tmall"]


def test_a_second_record_at_the_same_brand_is_an_update(other_api, known_to_a):
    assert _upsert(other_api, KNOWN_TO_A, "B-1").status_code == 201
    again = _upsert(other_api, KNOWN_TO_A, "B-1")
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["updated"] is False


def test_a_merge_is_announced_only_to_brands_that_knew_both_people(
    brand, other_brand, tmall, other_store, known_to_a, django_capture_on_commit_callbacks
):
    with Receiver() as ours, Receiver() as theirs:
        webhooks.create_subscription(brand=brand, url=ours.url, events=["member.merged"])
        webhooks.create_subscription(brand=other_brand, url=theirs.url, events=["member.merged"])
        # Brand B knew someone by e-mail only; B's next record of them carries the phone
        # brand A knows: the two people are linked (OneID merges them).
        record = {"store": other_store, "store_member_id": "B-9", "email": "b9@example.com"}
        services.resolve_store_record(StoreRecord.clean(**record))
        with django_capture_on_commit_callbacks(execute=True):
            services.resolve_store_record(StoreRecord.clean(**record, phone=KNOWN_TO_A))
        assert MergeEvent.objects.count() == 1
        # A knew only one of the two, B only the other: neither hears of the merge (each
        # would learn that another brand knows the person).
        assert not Delivery.objects.exists()
        assert ours.requests == [] and theirs.requests == []

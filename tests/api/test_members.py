"""Members and orders over the API: upsert through identity resolution, read, look up."""

from __future__ import annotations

import pytest

from members.models import Member, MergeEvent, Order

from .conftest import client_for, make_key, member_of

pytestmark = pytest.mark.django_db


def upsert(api, **fields):
    return api.post("/api/v1/members/", {"store": "lotus-tmall", **fields})


def test_upsert_creates_then_is_idempotent(api, tmall):
    first = upsert(api, member_id="T100", phone="138 0013 8000", name="张三", email="ZS@Example.com")
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["created"] is True and body["member"]["phone"] == "+8613800138000"
    assert body["member"]["email"] == "zs@example.com"
    assert body["member"]["memberships"] == [
        {"store": "lotus-tmall", "member_id": "T100", "joined_at": None, "tier": "", "points": 0}
    ]
    again = upsert(api, member_id="T100", phone="138 0013 8000", name="张三", email="ZS@Example.com")
    assert again.status_code == 200
    assert again.json()["created"] is False and again.json()["updated"] is False
    assert Member.objects.count() == 1


def test_upsert_merges_people_sharing_a_phone(api, tmall, jd):
    a = upsert(api, member_id="T1", phone="13800138000").json()["member"]["id"]
    b = api.post("/api/v1/members/", {"store": "lotus-jd", "member_id": "J1", "email": "x@example.com"}).json()
    linking = api.post(
        "/api/v1/members/", {"store": "lotus-jd", "member_id": "J1", "phone": "+86 138 0013 8000"}
    ).json()
    assert linking["merged"] == [b["member"]["id"]]
    assert linking["member"]["id"] == a
    assert MergeEvent.objects.count() == 1
    # The absorbed id answers with the survivor.
    assert api.get(f"/api/v1/members/{b['member']['id']}/").json()["id"] == a


def test_invalid_values_are_400_naming_the_field(api, tmall):
    response = upsert(api, member_id="T1", phone="12")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": "phone", "message": "'12' is not a valid phone number"}]
    assert upsert(api, phone="13800138000").json()["errors"][0]["field"] == "member_id"
    assert api.post("/api/v1/members/", [1, 2], format="json").status_code == 400
    assert api.post("/api/v1/members/", "garbage", content_type="application/json").status_code == 400


def test_store_must_belong_to_the_brand_and_to_a_bound_key(brand, tmall, jd, other_store):
    _key, raw = make_key(brand, store=tmall)
    bound = client_for(raw)
    assert bound.post("/api/v1/members/", {"member_id": "T1"}).status_code == 201  # defaults to its store
    assert bound.post("/api/v1/members/", {"store": "lotus-jd", "member_id": "J1"}).status_code == 403
    _key, raw = make_key(brand, name="brand-wide")
    wide = client_for(raw)
    assert wide.post("/api/v1/members/", {"member_id": "X"}).status_code == 400
    assert wide.post("/api/v1/members/", {"store": "peony-jd", "member_id": "X"}).status_code == 400


def test_lookup_by_phone_email_unionid(api, alice):
    for query in ("phone=138-0013-8000", "email=ALICE@example.com"):
        response = api.get(f"/api/v1/members/?{query}")
        assert [m["id"] for m in response.json()["results"]] == [alice.pk], query
    assert api.get("/api/v1/members/?unionid=oUnknown123").json()["results"] == []
    assert api.get("/api/v1/members/").status_code == 400
    assert api.get("/api/v1/members/?phone=1&email=a@b.cn").status_code == 400


def test_unknown_member_is_404(api):
    assert api.get("/api/v1/members/999999/").status_code == 404


def test_a_batch_keeps_the_buyer_of_every_order(api, tmall, alice, django_capture_on_commit_callbacks):
    """Several orders of one member, of two members and of guests in one batch: every
    order keeps its buyer, and the members' aggregates equal a count from scratch."""
    bob = member_of(tmall, name="Bob", phone="+8613700137000", email="bob@example.com")
    buyers = ["alice", "bob", None, "alice", "bob", "alice", None]
    people = {"alice": alice, "bob": bob}
    orders = [
        {"order_id": f"B{i}", "store": "lotus-tmall", "amount": f"{10 * (i + 1)}.00",
         "placed_at": f"2026-01-0{i + 1}T10:00:00+08:00",
         **({"member_id": f"S{people[who].pk}"} if who else {})}
        for i, who in enumerate(buyers)
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/orders/", {"orders": orders})
    assert response.status_code == 201, response.json()
    assert [r["guest"] for r in response.json()["results"]] == [who is None for who in buyers]
    stored = {o.external_id: o.member_id for o in Order.objects.all()}
    assert stored == {f"B{i}": people[who].pk if who else None for i, who in enumerate(buyers)}
    for person in (alice, bob):
        person.refresh_from_db()
        mine = Order.objects.filter(member=person)
        assert person.order_count == mine.count() == buyers.count(person.name.lower())
        assert person.total_spent == sum(o.amount for o in mine)
        assert person.last_order_at == max(o.placed_at for o in mine)


def test_orders_batch_is_idempotent_and_links_members(api, tmall, alice):
    batch = {
        "orders": [
            {"order_id": "O1", "store": "lotus-tmall", "member_id": f"S{alice.pk}", "amount": "99.50",
             "placed_at": "2026-01-02T10:00:00+08:00", "categories": ["skincare"]},
            {"order_id": "O2", "store": "lotus-tmall", "amount": "10", "placed_at": "2026-01-02T11:00:00+08:00"},
        ]
    }  # fmt: skip
    first = api.post("/api/v1/orders/", batch)
    assert first.status_code == 201, first.json()
    assert first.json()["created"] == 2
    assert [r["guest"] for r in first.json()["results"]] == [False, True]
    again = api.post("/api/v1/orders/", batch)
    assert again.status_code == 200 and again.json() == {**first.json(), "created": 0, "existing": 2,
                                                          "results": [{**r, "created": False} for r in first.json()["results"]]}  # fmt: skip
    assert Order.objects.count() == 2
    assert Order.objects.get(external_id="O1").member == alice
    single = api.post(
        "/api/v1/orders/",
        {"order_id": "O3", "store": "lotus-tmall", "amount": "1", "placed_at": "2026-01-03T00:00:00Z"},
    )
    assert single.status_code == 201


def test_order_batch_is_all_or_nothing(api, tmall):
    batch = {"orders": [
        {"order_id": "O1", "store": "lotus-tmall", "amount": "1", "placed_at": "2026-01-02T10:00:00Z"},
        {"order_id": "O2", "store": "lotus-tmall", "amount": "-5", "placed_at": "2026-01-02T10:00:00Z"},
    ]}  # fmt: skip
    response = api.post("/api/v1/orders/", batch)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "orders/1/amount"
    assert not Order.objects.exists()


def test_member_reads_are_bounded_in_queries(api, alice, django_assert_max_num_queries):
    api.get("/api/v1/members/?phone=1")  # the key's lookup (then cached) and last-used write happen here
    # The member's memberships at the brand's stores with the member, the brand's orders.
    with django_assert_max_num_queries(2):
        assert api.get(f"/api/v1/members/{alice.pk}/").status_code == 200
    with django_assert_max_num_queries(4):
        assert api.get("/api/v1/members/?phone=13800138000").status_code == 200

"""Which data requests a brand must answer: those of its stores' members."""

from __future__ import annotations

from members.models import StoreMembership
from privacy.models import DataSubjectRequest
from privacy.queries import requests_of_brand
from tests.factories import BrandFactory, MemberFactory, StoreFactory


def test_a_request_belongs_to_every_brand_the_person_is_a_member_of(db):
    lotus, peony = BrandFactory(), BrandFactory()
    lotus_store, lotus_store_2, peony_store = (
        StoreFactory(brand=lotus),
        StoreFactory(brand=lotus),
        StoreFactory(brand=peony),
    )
    both, only_lotus, nobody = MemberFactory(), MemberFactory(), MemberFactory()
    for member, store, sid in [
        (both, lotus_store, "a"),
        (both, lotus_store_2, "b"),  # two stores of one brand: still one request
        (both, peony_store, "c"),
        (only_lotus, lotus_store, "d"),
    ]:
        StoreMembership.objects.create(member=member, store=store, store_member_id=sid)
    r_both = DataSubjectRequest.objects.create(member=both, kind="access")
    r_lotus = DataSubjectRequest.objects.create(member=only_lotus, kind="deletion")
    DataSubjectRequest.objects.create(member=nobody, kind="access")

    assert sorted(requests_of_brand(lotus).values_list("pk", flat=True)) == sorted([r_both.pk, r_lotus.pk])
    assert list(requests_of_brand(peony.pk).values_list("pk", flat=True)) == [r_both.pk]

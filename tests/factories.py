"""factory_boy factories. Members made here skip resolution on purpose (fast fixtures for
pages); tests of resolution itself go through ``members.services``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from members.identities import store_member_value
from members.models import Brand, Identity, Member, Order, Store, StoreMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@staff.example.com")
    password = factory.django.Password("correct horse battery staple")


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"brand{n}")
    name = factory.Sequence(lambda n: f"品牌{n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"store{n}")
    name = factory.Sequence(lambda n: f"门店{n}")
    platform = "tmall"


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    name = factory.Sequence(lambda n: f"会员{n}")
    city = "上海"
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: f"O{n:08d}")
    amount = Decimal("199.00")
    placed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))


def store_profile(member: Member) -> dict:
    """A membership's ``profile`` and ``profile_observed_at`` as if the store's record had
    given the member's values (the brand wall's source of what a brand sees)."""
    from members.services.profile import profile_of
    from members.survivorship import stored_profile

    return {"profile": stored_profile(profile_of(member)), "profile_observed_at": member.profile_observed_at}


def make_members(store: Store, count: int, *, start: int = 0, orders_each: int = 0) -> list[Member]:
    """Bulk-create ``count`` members with phone, e-mail and store identities and a
    membership at ``store``: enough rows for query-count tests in a few statements."""
    members = Member.objects.bulk_create(
        [
            Member(name=f"会员{i}", city="上海", phone=f"+86139{i:08d}", email=f"m{i}@example.com")
            for i in range(start, start + count)
        ]
    )
    if members[0].pk is None:  # backends that do not return ids from bulk_create
        members = list(Member.objects.order_by("-pk")[:count])[::-1]
    identities, memberships, orders = [], [], []
    now = timezone.now()
    for member, i in zip(members, range(start, start + count), strict=True):
        identities += [
            Identity(member=member, kind="phone", value=member.phone, store=store),
            Identity(member=member, kind="email", value=member.email, store=store),
            Identity(member=member, kind="store_member", value=store_member_value(store.pk, f"S{i}"), store=store),
        ]
        memberships.append(
            StoreMembership(member=member, store=store, store_member_id=f"S{i}", tier="金卡", **store_profile(member))
        )
        orders += [
            Order(
                store=store,
                external_id=f"M{i}-{k}",
                member=member,
                amount=Decimal("88.00"),
                placed_at=now - dt.timedelta(days=k),
            )
            for k in range(orders_each)
        ]
    Identity.objects.bulk_create(identities)
    StoreMembership.objects.bulk_create(memberships)
    Order.objects.bulk_create(orders)
    return members

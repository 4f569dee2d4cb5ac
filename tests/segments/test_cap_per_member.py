"""A build counts the weekly sends per matched member (``preference_q(per_member=True)``)
instead of grouping the brand's whole contact log; both forms let the same people
through, whatever their own limit, the brand's default, the setting's default, and sends
from other brands or outside the window."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent.models import Preference
from consent.queries import preference_q
from members.models import Member
from segments.models import ContactLog, ContactPolicy
from tests.factories import BrandFactory

from .conftest import shopper

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def crowd(brand, tmall, marketing):
    """(own weekly limit or None for no preference row, sends this week, older sends, other brand's sends)."""
    other = BrandFactory(code="other-brand")
    shapes = [
        (None, 0, 0, 0),
        (None, 2, 0, 0),
        (None, 3, 0, 0),
        (None, 5, 0, 0),
        (None, 0, 4, 0),
        (None, 0, 0, 4),
        ("none", 3, 0, 0),  # a preference row without a limit: the defaults apply
        (1, 0, 0, 0),
        (1, 1, 0, 0),
        (2, 1, 3, 3),
        (0, 0, 0, 0),
    ]
    people = []
    for own, recent, old, elsewhere in shapes:
        member = shopper(tmall)
        if own is not None:
            Preference.objects.create(member=member, brand=brand, max_per_week=None if own == "none" else own)
        sends = [(brand, NOW - dt.timedelta(days=1))] * recent + [(brand, NOW - dt.timedelta(days=9))] * old
        sends += [(other, NOW - dt.timedelta(days=1))] * elsewhere
        for sender, sent_at in sends:
            ContactLog.objects.create(member=member, brand=sender, purpose=marketing, channel="sms", sent_at=sent_at)
        people.append(member)
    return people


def _through(brand, **kwargs) -> set[int]:
    return set(Member.objects.filter(preference_q(brand, "sms", now=NOW, **kwargs)).values_list("pk", flat=True))


@pytest.mark.parametrize("policy", [None, 0, 1, 4])
@pytest.mark.parametrize("default", [0, 3])
def test_per_member_count_agrees_with_the_grouped_one(brand, crowd, settings, policy, default):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = default
    if policy is not None:
        ContactPolicy.objects.create(brand=brand, max_per_week=policy)

    grouped = _through(brand)
    assert _through(brand, per_member=True) == grouped
    assert grouped  # the crowd is not empty on either side
    assert crowd[-1].pk not in grouped  # a weekly limit of 0 keeps the person out


def test_per_member_count_as_of_the_build_clock(brand, crowd, settings):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 3
    capped = crowd[2]  # three sends yesterday
    assert capped.pk not in _through(brand, per_member=True)
    later = set(
        Member.objects.filter(preference_q(brand, "sms", now=NOW + dt.timedelta(days=7), per_member=True)).values_list(
            "pk", flat=True
        )
    )
    assert capped.pk in later

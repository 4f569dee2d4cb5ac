"""Preferences per member and brand, with their history; the suppression list."""

from __future__ import annotations

import datetime as dt

import pytest

from consent import services
from consent.models import Preference, PreferenceChange, Suppression
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_changes_are_kept_as_history(brand):
    member = MemberFactory()
    services.update_preferences(
        member=member, brand=brand, source_type="privacy_center", channels=["sms", "wechat"], max_per_week=3,
        quiet_start=dt.time(22), quiet_end=dt.time(8), topics=["护肤", "护肤", " 彩妆 "],
        promotion_types=["spend_and_save", "points"], language="zh-hans",
    )  # fmt: skip
    services.update_preferences(member=member, brand=brand, source_type="api_key", source_ref="key-1", max_per_week=1)
    preference = Preference.objects.get(member=member, brand=brand)
    assert (preference.channels, preference.max_per_week, preference.topics) == (["sms", "wechat"], 1, ["护肤", "彩妆"])
    first, second = PreferenceChange.objects.order_by("changed_at", "id")
    assert first.changes["quiet_start"] == [None, "22:00:00"]
    assert second.changes == {"max_per_week": [3, 1]}
    assert (second.source_type, second.source_ref) == ("api_key", "key-1")


def test_an_unchanged_save_writes_no_history(brand):
    member = MemberFactory()
    services.update_preferences(member=member, brand=brand, source_type="privacy_center", max_per_week=2)
    services.update_preferences(member=member, brand=brand, source_type="privacy_center", max_per_week=2)
    assert PreferenceChange.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"max_per_week": 500}, "max_per_week"),
        ({"max_per_week": "3"}, "max_per_week"),
        ({"quiet_start": "22:00"}, "quiet_start"),
        ({"promotion_types": ["free lunch"]}, "promotion_types"),
        ({"language": "fr"}, "language"),
        ({"favourite_colour": "red"}, "favourite_colour"),
    ],
)
def test_bad_preferences_are_rejected_naming_the_field(brand, changes, field):
    with pytest.raises(services.ConsentError) as info:
        services.update_preferences(member=MemberFactory(), brand=brand, source_type="privacy_center", **changes)
    assert info.value.field == field
    assert not Preference.objects.exists()


def test_suppressions_are_normalised_and_idempotent(brand):
    first = services.add_suppression(channel="sms", value="138 0013 8000", reason="complaint")
    again = services.add_suppression(channel="sms", value="+86-138-0013-8000", reason="complaint")
    assert first.pk == again.pk and first.value == "+8613800138000"
    assert (
        services.add_suppression(channel="email", value=" A@Example.com ", reason="bounce", brand=brand).value
        == "a@example.com"
    )
    with pytest.raises(services.ConsentError) as info:
        services.add_suppression(channel="sms", value="123", reason="manual")
    assert info.value.field == "value"
    assert Suppression.objects.count() == 2

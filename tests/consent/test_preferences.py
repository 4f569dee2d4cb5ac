"""Preferences per member and brand, with their history; the suppression list."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent import services
from consent.models import Preference, PreferenceChange, Suppression
from consent.models.preferences import suppression_hash
from consent.queries import can_contact
from tests.factories import MemberFactory
from tests.privacy.privacy_fixtures import *  # noqa: F403 - the signed-in shopper of the privacy center

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
    assert first.pk == again.pk and first.value == "138****8000"  # masked; the hash is what matches
    assert first.value_hash == suppression_hash("sms", "+8613800138000")
    email = services.add_suppression(channel="email", value=" A@Example.com ", reason="bounce", brand=brand)
    assert email.value_hash == suppression_hash("email", "a@example.com") and "@" in email.value
    with pytest.raises(services.ConsentError) as info:
        services.add_suppression(channel="sms", value="123", reason="manual")
    assert info.value.field == "value"
    assert Suppression.objects.count() == 2


# --- The privacy center says what the contact decision does --------------------------------

PAGE_SAYS = {
    "en": ["Tick none for no limit on channels", "0 pauses all messages", "Times are on this site"],
    "zh-hans": ["不勾选任何渠道即表示不限渠道", "填 0 表示暂停所有消息", "时间以本站时钟为准"],
    "zh-hant": ["不勾選任何管道即表示不限管道", "填 0 表示暫停所有訊息", "時間以本站時鐘為準"],
    "ru": ["Если не отметить ни одного канала, ограничений по каналам нет", "0 — приостановить все сообщения",
           "Время — по часам этого сайта"],
}  # fmt: skip


@pytest.mark.parametrize("language", PAGE_SAYS)
def test_the_page_says_no_channel_means_no_limit_in_every_language(signed_in, language):
    page = signed_in.get("/privacy/preferences/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    for text in PAGE_SAYS[language]:
        assert text in page, (language, text)
    assert "Leave empty for no limit" not in page  # the brand's usual limit applies


def test_what_the_person_saves_is_what_the_decision_obeys(signed_in, shopper, brand, purposes):
    marketing, prefix = purposes["marketing"], f"b{brand.pk}"

    def save(**fields):
        form = {"brand": brand.pk, **{f"{prefix}-{name}": value for name, value in fields.items()}}
        assert signed_in.post("/privacy/preferences/", form).status_code == 302

    save(topics="护肤")  # no channel ticked: no limit on channels
    assert can_contact(shopper, brand, marketing, "sms").allowed
    # The page offers only channels the person consented to (or asked to): e-mail too now.
    services.record_consent(member=shopper, brand=brand, purpose=marketing, channel="email", action="granted",
                            source_type="privacy_center")  # fmt: skip
    save(channels=["email"])
    assert can_contact(shopper, brand, marketing, "sms").reason == "preference_channel"
    save(channels=["sms"], max_per_week="0")
    assert can_contact(shopper, brand, marketing, "sms").reason == "paused"
    save(channels=["sms"], quiet_start="22:00", quiet_end="08:00")
    tonight = timezone.localtime().replace(hour=23, minute=0)
    assert can_contact(shopper, brand, marketing, "sms").allowed
    assert can_contact(shopper, brand, marketing, "sms", at=tonight).reason == "quiet_hours"

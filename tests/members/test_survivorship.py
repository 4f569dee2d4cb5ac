"""Survivorship rules on their own (members.survivorship): which value wins. Both import
paths and resolve_store_record apply them; tests/imports compares the paths end to end."""

from __future__ import annotations

import datetime as dt

from members.survivorship import (
    attributes_added_by_merge,
    attributes_after_record,
    is_newer,
    membership_changes,
    observed_values,
    profile_changes,
    survivorship_time,
    update_from_record,
)

T0 = dt.datetime(2025, 1, 1, 10, tzinfo=dt.UTC)
EARLIER = T0 - dt.timedelta(days=1)
LATER = T0 + dt.timedelta(days=1)


def test_blank_values_say_nothing():
    assert observed_values({"name": "", "city": None, "gender": "F", "phone": "+8613800138000"}) == {
        "gender": "F",
        "phone": "+8613800138000",
    }


def test_a_newer_or_equal_observation_is_newer_and_a_first_one_always_is():
    assert is_newer(LATER, T0) and is_newer(T0, T0)
    assert not is_newer(EARLIER, T0)
    assert is_newer(EARLIER, None) and is_newer(None, None)
    assert not is_newer(None, T0)  # an observation of unknown time never beats a known one


def test_newer_observation_overwrites_what_differs():
    current = {"name": "张伟", "city": "上海", "province": ""}
    assert profile_changes(current, {"name": "张伟", "city": "北京", "province": "北京"}, newer=True) == {
        "city": "北京",
        "province": "北京",
    }


def test_older_observation_only_fills_blanks():
    current = {"name": "张伟", "city": "", "birth_date": None}
    values = {"name": "张三", "city": "杭州", "birth_date": dt.date(1990, 1, 2)}
    assert profile_changes(current, values, newer=False) == {"city": "杭州", "birth_date": dt.date(1990, 1, 2)}


def test_blanks_never_overwrite_even_when_newer():
    assert profile_changes({"name": "张伟", "city": "上海"}, {"name": "", "city": None}, newer=True) == {}


def test_survivorship_time_moves_forward_only():
    assert survivorship_time(T0, LATER) == LATER
    assert survivorship_time(T0, EARLIER) == T0
    assert survivorship_time(None, EARLIER) == EARLIER
    assert survivorship_time(T0, None) == T0


def test_record_attributes_replace_those_of_the_same_name():
    assert attributes_after_record({"备注": "VIP", "渠道": "直播"}, {"备注": "SVIP"}) == {
        "备注": "SVIP",
        "渠道": "直播",
    }
    assert attributes_after_record({"备注": "VIP"}, {"备注": "VIP"}) is None  # nothing changes
    assert attributes_after_record({"备注": "VIP"}, {}) is None
    # An older observation only adds what is missing.
    assert attributes_after_record({"备注": "VIP"}, {"备注": "SVIP", "渠道": "门店"}, newer=False) == {
        "备注": "VIP",
        "渠道": "门店",
    }
    assert attributes_after_record({"备注": "VIP"}, {"备注": "SVIP"}, newer=False) is None


def test_a_merge_keeps_the_survivors_attributes_and_adds_the_others():
    assert attributes_added_by_merge({"备注": "VIP"}, {"备注": "普通", "渠道": "直播"}) == {"渠道": "直播"}


def test_update_from_a_newer_record():
    update = update_from_record(
        profile={"name": "张伟", "city": "上海"},
        observed_at=T0,
        attributes={"备注": "VIP"},
        record_profile={"city": "北京"},
        record_observed_at=LATER,
        record_attributes={"渠道": "直播"},
    )
    assert update.fields == {"city": "北京"}
    assert update.attributes == {"备注": "VIP", "渠道": "直播"}
    assert update.observed_at == LATER
    assert update.changed == ["city", "attributes"]


def test_update_from_an_older_record_keeps_the_time():
    update = update_from_record(
        profile={"name": "张伟", "city": ""},
        observed_at=T0,
        attributes={},
        record_profile={"name": "张三", "city": "杭州"},
        record_observed_at=EARLIER,
        record_attributes={},
    )
    assert (update.fields, update.attributes, update.observed_at, update.changed) == (
        {"city": "杭州"},
        None,
        T0,
        ["city"],
    )


def test_membership_takes_the_records_non_blank_values_and_its_person():
    current = {"member_id": 1, "joined_at": T0, "tier": "金卡", "points": 12}
    assert membership_changes(current, member_id=1, joined_at=None, tier="", points=None) == {}
    assert membership_changes(current, member_id=2, joined_at=LATER, tier="银卡", points=0) == {
        "member_id": 2,
        "joined_at": LATER,
        "tier": "银卡",
        "points": 0,  # zero points are a value, not a blank
    }

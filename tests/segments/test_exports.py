"""Exports re-check consent (⚑), record DataUsage and ContactLog, and are safe to open."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from consent import services as consent_services
from consent.models import DataUsage
from segments import exports, services
from segments.models import ContactLog, SegmentExport
from segments.queries import EXPORT_HEADER, contactable_counts, export_rows, exported_members

from .conftest import build, grant, make_segment, shopper

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


@pytest.fixture
def built(brand, tmall, marketing):
    members = [shopper(tmall, name=name) for name in ("=HYPERLINK(1)", "李娜", "王芳")]
    for member in members:
        grant(member, marketing)
    return build(make_segment(brand, marketing, SHANGHAI)), members


def test_withdrawal_after_the_build_keeps_the_person_out(built, marketing):
    done, (first, second, third) = built
    grant(second, marketing, action="withdrawn")

    export = exports.export_build(done, kind=SegmentExport.Kind.SEND, campaign="双12")

    assert (export.in_build, export.exported, export.excluded) == (3, 2, 1)
    assert set(exported_members(export).values_list("pk", flat=True)) == {first.pk, third.pk}
    assert not DataUsage.objects.filter(member=second).exists()


def test_send_records_data_usage_and_contacts(built, brand, marketing):
    done, members = built

    export = exports.export_build(done, kind=SegmentExport.Kind.SEND, campaign="双12")

    usage = DataUsage.objects.filter(context_ref=export.context_ref)
    assert usage.count() == 3
    assert set(usage.values_list("brand", "purpose", "channel", "context_type")) == {
        (brand.pk, marketing.pk, "sms", "segment_export")
    }
    assert ContactLog.objects.filter(export=export, campaign="双12", channel="sms").count() == 3


def test_download_records_data_usage_but_no_contact(built):
    done, _ = built

    export = exports.export_build(done, kind=SegmentExport.Kind.DOWNLOAD)

    assert DataUsage.objects.filter(context_ref=export.context_ref).count() == 3
    assert not ContactLog.objects.exists()


def test_a_second_send_respects_the_frequency_cap(built, settings):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 1
    done, _ = built
    exports.export_build(done, kind=SegmentExport.Kind.SEND)

    again = exports.export_build(done, kind=SegmentExport.Kind.SEND)

    assert again.exported == 0


def test_preferences_changed_after_the_build_keep_the_person_out(built, brand):
    done, (first, second, third) = built
    consent_services.update_preferences(member=first, brand=brand, source_type="privacy_center", channels=["email"])
    consent_services.update_preferences(member=second, brand=brand, source_type="privacy_center", max_per_week=0)

    for kind in (SegmentExport.Kind.DOWNLOAD, SegmentExport.Kind.SEND):
        export = exports.export_build(done, kind=kind)
        assert set(exported_members(export).values_list("pk", flat=True)) == {third.pk}, kind


def test_a_send_checks_quiet_hours_at_its_time_of_sending(built, brand):
    done, (first, second, third) = built
    consent_services.update_preferences(
        member=first, brand=brand, source_type="privacy_center", quiet_start=dt.time(22), quiet_end=dt.time(8)
    )
    tonight = timezone.localtime().replace(hour=23, minute=0, second=0, microsecond=0)

    assert exports.export_build(done, kind=SegmentExport.Kind.DOWNLOAD).exported == 3  # no time of sending
    at_night = exports.export_build(done, kind=SegmentExport.Kind.SEND, send_at=tonight)
    assert set(exported_members(at_night).values_list("pk", flat=True)) == {second.pk, third.pk}
    at_noon = exports.export_build(done, kind=SegmentExport.Kind.SEND, send_at=tonight.replace(hour=12))
    assert at_noon.exported == 3


def test_a_review_file_ignores_the_weekly_limit_that_a_send_obeys(built, brand, settings):
    settings.CONTACT_DEFAULT_MAX_PER_WEEK = 1
    done, _ = built
    assert exports.export_build(done, kind=SegmentExport.Kind.SEND).exported == 3

    assert exports.export_build(done, kind=SegmentExport.Kind.DOWNLOAD).exported == 3
    assert exports.export_build(done, kind=SegmentExport.Kind.SEND).exported == 0


def test_erased_member_is_not_exported(built):
    done, (first, *_rest) = built
    type(first).objects.filter(pk=first.pk).update(status="erased")

    assert exports.export_build(done).exported == 2


def test_csv_rows_carry_the_channel_contact_point(built):
    done, members = built
    export = exports.export_build(done, kind=SegmentExport.Kind.DOWNLOAD)

    rows = list(export_rows(export, "sms"))

    assert EXPORT_HEADER[2] == "contact"
    assert sorted(row[2] for row in rows) == sorted(m.phone for m in members)


def test_unfinished_build_cannot_be_exported(brand, marketing):
    segment = make_segment(brand, marketing, SHANGHAI)
    queued, _ = services.request_build(segment, enqueue=False)

    with translation.override("en"), pytest.raises(services.BuildError, match="has not finished"):
        exports.export_build(queued)


def test_contactable_counts_per_purpose_and_channel(built, brand, marketing, django_assert_num_queries):
    with django_assert_num_queries(4):  # the purposes, then one count per channel (a purpose's pairs)
        counts = contactable_counts(brand)

    assert counts == {("marketing", "sms"): 3, ("marketing", "email"): 0, ("marketing", "wechat"): 0}


def test_contactable_counts_obey_preferences(built, brand, marketing, django_assert_num_queries):
    _done, (first, second, _third) = built
    consent_services.update_preferences(member=first, brand=brand, source_type="privacy_center", channels=["email"])
    consent_services.update_preferences(member=second, brand=brand, source_type="privacy_center", max_per_week=1)
    ContactLog.objects.create(member=second, brand=brand, purpose=marketing, channel="email")

    with django_assert_num_queries(4):
        assert contactable_counts(brand)[("marketing", "sms")] == 1


def test_capture_rate_by_store_month_counts_members_and_guests(brand, tmall, jd):
    import datetime as dt

    from django.utils import timezone

    from segments.queries import capture_rate_by_store_month
    from tests.factories import OrderFactory, StoreFactory

    member = shopper(tmall)
    at = timezone.now() - dt.timedelta(days=3)
    OrderFactory(store=tmall, member=member, placed_at=at)
    OrderFactory(store=tmall, member=None, placed_at=at)
    OrderFactory(store=jd, member=None, placed_at=at)
    OrderFactory(store=StoreFactory(code="elsewhere", brand__code="other"), member=member, placed_at=at)

    rows = {row.store_id: (row.orders, row.member_orders, str(row.rate)) for row in capture_rate_by_store_month(brand)}

    assert rows == {tmall.pk: (2, 1, "0.5000"), jd.pk: (1, 0, "0.0000")}

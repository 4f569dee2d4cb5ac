"""The history page reads as a timeline of changes: grouped by day in the person's time
zone, each entry "choice: before → after" with its source, notice, receipt and JSON; and
how the data was used, in words with the campaign and the brand. Its cost in queries does
not grow with the length of the history."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone, translation

from consent import services
from consent.models import Action, ConsentEvent, DataUsage, SourceType

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def entries(page: str) -> list[str]:
    """The consent entries' headlines, top to bottom, as text."""
    section = page.split('id="h-consent"')[1].split("</section>")[0]
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r"<li>\s*<strong>(.*?)</strong>", section, re.S)]


def test_each_entry_reads_as_a_change_newest_first_with_its_receipt(signed_in_english, shopper, purposes):
    marketing = purposes["marketing"].pk
    signed_in_english.post("/privacy/consents/set/", {"purpose": marketing, "channel": "sms", "value": "off"})
    signed_in_english.post("/privacy/consents/set/", {"purpose": marketing, "channel": "sms", "value": "off"})
    signed_in_english.post("/privacy/consents/set/", {"purpose": purposes["sharing"].pk, "channel": "", "value": "on"})

    page = signed_in_english.get("/privacy/history/").content.decode()

    assert entries(page) == [
        "莲花美妆 · 向第三方提供: off → on",
        "莲花美妆 · 营销信息 · SMS: stays off",
        "莲花美妆 · 营销信息 · SMS: on → off",
        "莲花美妆 · 营销信息 · SMS: off → on",  # the store's grant: nothing before it
    ]
    for event in ConsentEvent.objects.filter(member_id=shopper.pk):
        assert f'href="/privacy/history/{event.pk}/receipt/"' in page
        assert f'href="/privacy/history/{event.pk}/receipt.json" download' in page
    assert "in this privacy center" in page and "at 莲花天猫旗舰店" in page
    assert "version 1" in page  # the notice shown with the choice


def test_days_are_headed_in_the_persons_time_zone(signed_in_english, shopper, purposes, tmall):
    # 23:30 in Shanghai on 1 March is 15:30 UTC: the entry belongs to 1 March there, to
    # the next day in Auckland.
    moment = dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.UTC)
    services.record_consent(
        member=shopper, brand=tmall.brand, purpose=purposes["marketing"], channel="sms", action=Action.WITHDRAWN,
        source_type=SourceType.STORE, store=tmall, occurred_at=moment,
    )  # fmt: skip

    signed_in_english.cookies["tz"] = "Asia/Shanghai"
    shanghai = signed_in_english.get("/privacy/history/").content.decode()
    signed_in_english.cookies["tz"] = "Pacific/Auckland"
    auckland = signed_in_english.get("/privacy/history/").content.decode()

    assert '<time datetime="2026-03-01">' in shanghai and '<time datetime="2026-03-02">' not in shanghai
    assert '<time datetime="2026-03-02">' in auckland
    with translation.override("en"):
        assert formats.date_format(dt.date(2026, 3, 1), "DATE_FORMAT") in shanghai
    assert shanghai.count('class="timeline-day"') == 2  # today's store grant, and 1 March


def test_a_page_of_history_starts_from_the_state_before_it(signed_in_english, shopper, brand, purposes):
    for k in range(60):
        services.record_consent(
            member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
            action=Action.WITHDRAWN if k % 2 == 0 else Action.GRANTED, source_type=SourceType.STORE,
        )  # fmt: skip
    shown, url = [], "/privacy/history/"
    while url:
        page = signed_in_english.get(url).content.decode()
        shown += entries(page)
        older = re.search(r'href="(\?before=\d+)&amp;', page)
        url = "/privacy/history/" + older.group(1) if older else None

    # Every event alternates: no entry on any page, the first of each included, "stays".
    assert len(shown) == 61 and not any("stays" in text for text in shown)
    assert shown[-1].endswith("off → on")  # the store's first grant


def test_query_count_does_not_grow_with_the_history(signed_in_english, shopper, brand, tmall, purposes):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert signed_in_english.get("/privacy/history/").status_code == 200
        return len(queries)

    def add(n: int) -> None:
        for k in range(n):
            services.record_consent(
                member=shopper, brand=brand, purpose=purposes["sharing" if k % 3 else "marketing"],
                channel="" if k % 3 else "sms", action=Action.GRANTED if k % 2 else Action.WITHDRAWN,
                source_type=SourceType.STORE, store=tmall,
            )  # fmt: skip
            DataUsage.objects.create(
                member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
                context_type="segment_export", context_ref=f"export:{k}", campaign=f"Campaign {k}",
            )  # fmt: skip

    # Brands, purposes, stores and notices are fetched once each (none asked when a page
    # names no store or notice): compare pages that name all of them.
    add(6)
    count()  # the process learns which hosts brands own (once a minute: privacy.face.brand_hosts)
    few = count()
    add(120)
    many = count()
    assert many == few, (few, many)


def test_history_page_cost_is_bounded(signed_in_english, shopper, brand, purposes, django_assert_max_num_queries):
    for k in range(80):
        services.record_consent(
            member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
            action=Action.GRANTED if k % 2 else Action.WITHDRAWN, source_type=SourceType.STORE,
        )  # fmt: skip
    with django_assert_max_num_queries(13):
        assert signed_in_english.get("/privacy/history/").status_code == 200


def test_data_usage_reads_in_words_with_campaign_brand_and_date(signed_in_english, shopper, brand, purposes):
    when = timezone.now() - dt.timedelta(days=1)
    DataUsage.objects.create(
        member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms", context_type="segment_export",
        context_ref="export:4", campaign="Double 11 presale", occurred_at=when,
    )  # fmt: skip
    DataUsage.objects.create(
        member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms", context_type="api_segment_read",
        context_ref="vip-sms (crm)", occurred_at=when,
    )  # fmt: skip

    page = signed_in_english.get("/privacy/history/").content.decode()

    usage = page.split('id="h-usage"')[1]
    assert "Exported for: SMS campaign “Double 11 presale” by 莲花美妆" in usage
    assert "Read by the brand&#x27;s systems for: 营销信息 · SMS, by 莲花美妆" in usage
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert formats.date_format(timezone.localtime(when), "MONTH_DAY_FORMAT") in usage
    for jargon in ("export:4", "vip-sms", "segment_export", "api_segment_read"):
        assert jargon not in page

"""Re-consent segments (issue 25 item 9): the rule ``older_notice`` matches people whose
standing consent to a purpose rests on an older version of the purpose's notice than its
newest, the same people ``consent.reconsent.standing_before`` lists for the newest notice;
a privacy officer makes such a segment in the admin and gets its gateway file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from consent import reconsent
from consent import services as consent_services
from consent.models import Notice, Purpose
from segments.models import Segment, SegmentExport
from segments.rules import Context, RuleError, matching_members, validate
from tests.factories import BrandFactory, StoreFactory, UserFactory

from .conftest import SEGMENT_PERMS, segment_form, shopper

pytestmark = pytest.mark.django_db

OLDER = {"all": [{"field": "older_notice", "op": "in", "value": ["marketing"]}]}


def _publish(purpose, locale, body, days_ago):
    return consent_services.publish_notice(
        brand=purpose.brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale=locale, title="营销告知",
        body=body, published_at=timezone.now() - dt.timedelta(days=days_ago),
    )  # fmt: skip


def _consent(member, purpose, notice, days_ago, action="granted", channel="sms"):
    consent_services.record_consent(
        member=member, brand=purpose.brand, purpose=purpose, channel=channel, action=action, source_type="store",
        notice=notice, occurred_at=timezone.now() - dt.timedelta(days=days_ago),
    )  # fmt: skip


@pytest.fixture
def world(brand, tmall):
    """Marketing (SMS) with v1 in two languages and v2 in Chinese; analytics with one
    version. Who stands where is in the names."""
    marketing = Purpose.objects.create(brand=brand, code="marketing", name="营销信息", channels=["sms"])
    analytics = Purpose.objects.create(brand=brand, code="analytics", name="分析")
    v1 = _publish(marketing, "zh-hans", "v1", 100)
    v1_en = _publish(marketing, "en", "v1", 100)
    v2 = _publish(marketing, "zh-hans", "v2: 新增微信渠道", 10)
    a1 = _publish(analytics, "zh-hans", "a1", 100)
    people = {name: shopper(tmall, phone=f"+861380013800{i}") for i, name in enumerate(
        ["on_v1", "on_v1_en", "on_v2", "withdrew", "agreement_only", "analytics_v1", "on_v1_and_analytics"]
    )}  # fmt: skip
    _consent(people["on_v1"], marketing, v1, 50)
    _consent(people["on_v1_en"], marketing, v1_en, 40)
    _consent(people["on_v2"], marketing, v2, 5)
    _consent(people["withdrew"], marketing, v1, 60)
    _consent(people["withdrew"], marketing, v2, 2, action="withdrawn")
    agreement = consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议", body="协议"
    )
    _consent(people["agreement_only"], marketing, agreement, 30)  # no version of the purpose's notice
    _consent(people["analytics_v1"], analytics, a1, 30, channel="")
    _consent(people["on_v1_and_analytics"], marketing, v1, 30)
    _consent(people["on_v1_and_analytics"], analytics, a1, 30, channel="")
    return {"marketing": marketing, "analytics": analytics, "v2": v2, "people": people}


def _matched(brand, rules) -> set[int]:
    validate(rules)
    return set(matching_members(rules, Context.for_brand(brand.pk)).values_list("pk", flat=True))


def _ids(world, *names) -> set[int]:
    return {world["people"][name].pk for name in names}


def test_older_notice_matches_consent_under_an_older_version_in_any_language(brand, world):
    assert _matched(brand, OLDER) == _ids(world, "on_v1", "on_v1_en", "on_v1_and_analytics")


def test_older_notice_is_what_reconsent_lists_for_the_newest_notice(brand, world):
    """One rule, two doors: the segment rule and the notice page's list agree."""
    listed = set(reconsent.standing_before(world["v2"]).values_list("member_id", flat=True))

    assert _matched(brand, OLDER) == listed


def test_not_in_all_and_a_purpose_with_one_version(brand, world):
    everyone = {m.pk for m in world["people"].values()}
    not_in = {"all": [{"field": "older_notice", "op": "not_in", "value": ["marketing"]}]}
    both = {"all": [{"field": "older_notice", "op": "all", "value": ["marketing", "analytics"]}]}
    analytics = {"all": [{"field": "older_notice", "op": "in", "value": ["analytics"]}]}

    assert _matched(brand, not_in) == everyone - _ids(world, "on_v1", "on_v1_en", "on_v1_and_analytics")
    assert _matched(brand, both) == set()  # analytics has one version: nobody is behind on it
    assert _matched(brand, analytics) == set()
    _publish(world["analytics"], "zh-hans", "a2", 1)
    assert _matched(brand, both) == _ids(world, "on_v1_and_analytics")
    assert _matched(brand, analytics) == _ids(world, "analytics_v1", "on_v1_and_analytics")


def test_another_brands_notices_and_consents_do_not_count(brand, world):
    """⚑ Brand wall: the same person behind on another brand's notice is not matched, and a
    new version published by another brand makes nobody here behind."""
    other = BrandFactory(code="rose")
    store = StoreFactory(brand=other, code="rose-tmall")
    theirs = Purpose.objects.create(brand=other, code="marketing", name="营销", channels=["sms"])
    old = _publish(theirs, "zh-hans", "r1", 100)
    _publish(theirs, "zh-hans", "r2", 1)
    person = world["people"]["on_v2"]
    from members.models import StoreMembership

    StoreMembership.objects.create(member=person, store=store, store_member_id="R1")
    _consent(person, theirs, old, 50)

    assert person.pk not in _matched(brand, OLDER)
    assert _matched(other, OLDER) == {person.pk}


def test_validation_takes_lists_of_codes_only():
    with pytest.raises(RuleError, match="older_notice"):
        validate({"all": [{"field": "older_notice", "op": "=", "value": "marketing"}]})
    with pytest.raises(RuleError, match="non-empty list"):
        validate({"all": [{"field": "older_notice", "op": "in", "value": []}]})


# --- In the admin ------------------------------------------------------------------------


@pytest.fixture
def officer(brand, client):
    """A privacy officer of this brand only, who may build and export segments."""
    user = UserFactory(username="lotus-officer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=[*SEGMENT_PERMS, "view_consentstate", "view_notice", "view_purpose"])
    )
    brand.staff.add(user)
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


def _form(brand, purpose, rules, **changes):
    return segment_form(brand, purpose, rules, **({"name": "重新授权 v2"} | changes))


def test_officer_makes_a_reconsent_segment_counts_it_and_gets_its_gateway_file(
    client, brand, world, officer, django_capture_on_commit_callbacks
):
    marketing = world["marketing"]

    count = client.post(
        reverse("admin:segments_segment_count"),
        {"purpose": marketing.pk, "channel": "sms", "rules": json.dumps(OLDER)},
    )
    assert count.status_code == 200
    assert count.json()["counts"]["matched"] == 3

    added = client.post(reverse("admin:segments_segment_add"), _form(brand, marketing, OLDER))
    assert added.status_code == 302, added.content.decode()[:2000]
    segment = Segment.objects.get(brand=brand)
    assert segment.slug == "chong-xin-shou-quan-v2"  # the name in pinyin
    assert segment.rules == OLDER

    # The build runs after the request commits (a worker's job): the answer is the page
    # that waits for it, and once it is done, that page's form gives the file.
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            reverse("admin:segments_segment_build_export", args=[segment.pk]),
            {"campaign": "重新授权", "phones": "national"},
        )
    assert started.status_code == 302
    waiting = client.get(started.url)
    assert 'data-build-status="succeeded"' in waiting.content.decode()
    assert "data-auto-submit" in waiting.content.decode()
    download = client.post(started.url.split("?")[0], {"campaign": "重新授权", "phones": "national"})
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode("utf-8")
    rows = list(csv.reader(io.StringIO(body)))
    expected = {world["people"][n].phone.removeprefix("+86") for n in ("on_v1", "on_v1_en", "on_v1_and_analytics")}
    assert rows[0] == ["mobile"]
    assert {row[0] for row in rows[1:]} == expected
    export = SegmentExport.objects.get()
    assert (export.campaign, export.exported) == ("重新授权", 3)


def test_unknown_purpose_code_is_refused_with_its_name(client, brand, world, officer):
    rules = {"all": [{"field": "older_notice", "op": "in", "value": ["marketting"]}]}

    response = client.post(reverse("admin:segments_segment_add"), _form(brand, world["marketing"], rules))

    assert response.status_code == 200
    assert "marketting" in response.content.decode()
    assert not Segment.objects.exists()

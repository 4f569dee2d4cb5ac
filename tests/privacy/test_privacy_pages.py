"""Privacy center pages and changes, each with a bound on its queries."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from consent.models import Action, ConsentEvent, ConsentState, PreferenceChange, SourceType
from consent.queries import can_contact
from privacy.models import DataSubjectRequest

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

PAGES = ["/privacy/", "/privacy/consents/", "/privacy/preferences/", "/privacy/history/", "/privacy/data/",
         "/privacy/data/delete/"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_few_queries(signed_in, path, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):
        response = signed_in.get(path)
    assert response.status_code == 200
    assert "Content-Security-Policy" in response
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/privacy/accounts/login/code/" in response["Location"]


def test_overview_shows_brand_store_tier_and_profile(signed_in, shopper, brand):
    page = signed_in.get("/privacy/").content.decode()
    for text in (brand.name, "莲花天猫旗舰店", "金卡", "1200", "王小花", "+8613800138000", "xiaohua@example.com"):
        assert text in page


def test_consents_show_switches_with_notice_and_separate_section(signed_in, purposes):
    page = signed_in.get("/privacy/consents/").content.decode()
    assert "营销告知" in page and "第三方告知" in page
    sms_switch = page.split(f'id="p-{purposes["marketing"].pk}-sms"')[1].split("</form>")[0]
    assert 'aria-checked="true"' in sms_switch  # the store recorded a grant
    sharing = page.split(f'id="p-{purposes["sharing"].pk}-none"')[1].split("</form>")[0]
    assert 'aria-checked="false"' in sharing  # separate consent: never pre-ticked
    assert 'name="value" value="on"' in sharing


def test_withdraw_sms_records_the_ledger_event(signed_in, shopper, brand, purposes, django_assert_max_num_queries):
    marketing = purposes["marketing"]
    with django_assert_max_num_queries(25):
        response = signed_in.post(
            "/privacy/consents/set/",
            {"purpose": marketing.pk, "channel": "sms", "value": "off"},
            HTTP_USER_AGENT="Mobile Safari",
        )
    assert response.status_code == 302
    event = ConsentEvent.objects.filter(member=shopper).order_by("-id").first()
    assert (event.action, event.channel, event.source_type) == (Action.WITHDRAWN, "sms", SourceType.PRIVACY_CENTER)
    assert event.evidence["user_agent"] == "Mobile Safari"
    assert not can_contact(shopper, brand, marketing, "sms").allowed


def test_switch_answers_json_for_the_script(signed_in, purposes):
    response = signed_in.post(
        "/privacy/consents/set/",
        {"purpose": purposes["sharing"].pk, "channel": "", "value": "on"},
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert response.status_code == 200
    assert response.json()["state"] == "on"


def test_email_grant_asks_for_double_opt_in(signed_in, shopper, brand, purposes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            "/privacy/consents/set/", {"purpose": purposes["marketing"].pk, "channel": "email", "value": "on"}
        )
    assert response.status_code == 302
    state = ConsentState.objects.get(member=shopper, purpose=purposes["marketing"], channel="email")
    assert state.action == Action.REQUESTED
    assert any("/privacy/confirm/" in m.body for m in mail.outbox)
    assert not can_contact(shopper, brand, purposes["marketing"], "email").allowed


def test_bad_switch_input_is_4xx(signed_in, purposes):
    assert (
        signed_in.post("/privacy/consents/set/", {"purpose": "x", "channel": "sms", "value": "on"}).status_code == 404
    )
    assert (
        signed_in.post(
            "/privacy/consents/set/", {"purpose": purposes["marketing"].pk, "channel": "post", "value": "on"}
        ).status_code
        == 404
    )
    assert (
        signed_in.post(
            "/privacy/consents/set/", {"purpose": purposes["marketing"].pk, "channel": "sms", "value": "maybe"}
        ).status_code
        == 400
    )
    assert signed_in.get("/privacy/consents/set/").status_code == 405


def test_withdraw_everything_in_one_step(signed_in, shopper, purposes, django_assert_max_num_queries):
    signed_in.post("/privacy/consents/set/", {"purpose": purposes["sharing"].pk, "channel": "", "value": "on"})
    with django_assert_max_num_queries(40):
        response = signed_in.post("/privacy/consents/withdraw-all/")
    assert response.status_code == 302
    assert not ConsentState.objects.filter(member=shopper).exclude(action=Action.WITHDRAWN).exists()
    request = DataSubjectRequest.objects.get(member=shopper, kind="withdraw_all")
    assert request.status == "completed" and request.outcome == {"withdrawn": 2}


def test_preferences_save_and_keep_history(signed_in, shopper, brand):
    prefix = f"b{brand.pk}"
    response = signed_in.post("/privacy/preferences/", {
        "brand": brand.pk, f"{prefix}-channels": ["sms"], f"{prefix}-max_per_week": "2",
        f"{prefix}-quiet_start": "22:00", f"{prefix}-quiet_end": "08:00", f"{prefix}-topics": "护肤，香水",
        f"{prefix}-promotion_types": ["spend_and_save"], f"{prefix}-language": "zh-hant",
    })  # fmt: skip
    assert response.status_code == 302
    pref = shopper.preferences.get()
    assert (pref.channels, pref.max_per_week, pref.topics, pref.language) == (["sms"], 2, ["护肤", "香水"], "zh-hant")
    assert PreferenceChange.objects.filter(preference=pref, source_type="privacy_center").count() == 1


def test_preferences_bad_input_is_400_with_a_message(signed_in, brand):
    prefix = f"b{brand.pk}"
    response = signed_in.post(
        "/privacy/preferences/", {"brand": brand.pk, f"{prefix}-max_per_week": "999", f"{prefix}-quiet_start": "22:00"}
    )
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert signed_in.post("/privacy/preferences/", {"brand": "999999"}).status_code == 404


def test_history_shows_timeline_usage_and_receipts(signed_in, shopper, django_assert_max_num_queries):
    event = ConsentEvent.objects.filter(member=shopper).first()
    page = signed_in.get("/privacy/history/").content.decode()
    assert f"/privacy/history/{event.pk}/receipt/" in page
    # What the use meant, in the person's words; not the internal reference ("export:4").
    assert "您在某次营销活动的联系名单中。" in page and "双11 会员召回" not in page
    # Where each choice was made, in words: not "来源：门店" (From: Store) or "API key".
    assert "在莲花天猫旗舰店" in page and "来源" not in page
    english = signed_in.get("/privacy/history/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "at 莲花天猫旗舰店" in english
    with django_assert_max_num_queries(8):
        receipt = signed_in.get(f"/privacy/history/{event.pk}/receipt/")
    assert receipt.status_code == 200 and event.hash in receipt.content.decode()
    assert 'href="/privacy/history/"' in receipt.content.decode()  # a way back, not a dead end
    download = signed_in.get(f"/privacy/history/{event.pk}/receipt.json")
    assert download["Content-Disposition"].startswith("attachment")
    assert download.json()["evidence"]["eventHash"] == event.hash


def test_correction_request(signed_in, shopper):
    assert signed_in.post("/privacy/data/correction/", {"details": "  "}).status_code == 400
    response = signed_in.post("/privacy/data/correction/", {"details": "我的城市是上海，不是杭州"})
    assert response.status_code == 302
    request = DataSubjectRequest.objects.get(member=shopper, kind="correction")
    assert request.status == "received" and (request.due_at - request.received_at).days == 15
    assert f"#{request.pk}" in signed_in.get("/privacy/data/").content.decode()


def test_change_without_csrf_token_is_refused(account, purposes):
    client = Client(enforce_csrf_checks=True)
    client.force_login(account.user, backend="django.contrib.auth.backends.ModelBackend")
    for path, data in [
        ("/privacy/consents/set/", {"purpose": purposes["marketing"].pk, "channel": "sms", "value": "off"}),
        ("/privacy/consents/withdraw-all/", {}),
        ("/privacy/data/export/", {}),
        ("/privacy/data/delete/", {"confirm": "on"}),
        ("/privacy/data/correction/", {"details": "x"}),
    ]:
        assert client.post(path, data).status_code == 403, path


def test_history_pages_through_older_choices(signed_in, shopper, brand, purposes, django_assert_max_num_queries):
    from consent import services

    for k in range(60):
        services.record_consent(
            member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
            action="withdrawn" if k % 2 else "granted", source_type="store",
        )  # fmt: skip
    with django_assert_max_num_queries(13):
        page = signed_in.get("/privacy/history/").content.decode()
    counts = [page.count("/receipt/")]
    while older := re.search(r'href="\?before=(\d+)&amp;used_before=#h-consent"', page):
        page = signed_in.get(f"/privacy/history/?before={older.group(1)}").content.decode()
        counts.append(page.count("/receipt/"))
    assert counts == [25, 25, 11]  # 61 events in all, 25 a page


def test_history_pages_through_earlier_uses_keeping_the_choices_page(signed_in, shopper, brand, purposes):
    from consent.models import DataUsage

    for k in range(60):  # the fixture's one use, and 60 more on the same second: ids break the tie
        DataUsage.objects.create(
            member=shopper, brand=brand, purpose=purposes["marketing"], channel="sms",
            context_type="segment_export", context_ref=f"export:{k}", campaign=f"Campaign {k:02d}",
        )  # fmt: skip
    url, seen = "/privacy/history/?before=999999999", []
    while url:
        page = signed_in.get(url).content.decode()
        section = page[page.index('id="h-usage"') :]
        seen.append(re.findall(r"Campaign (\d\d)", section))
        earlier = re.search(r'href="(\?used_before=\d+&amp;before=999999999#h-usage)"', section)
        url = "/privacy/history/" + earlier.group(1).replace("&amp;", "&") if earlier else None
    assert [len(p) for p in seen] == [25, 25, 10]  # and the fixture's own use, without a campaign, last
    flat = [int(n) for p in seen for n in p]
    assert flat == list(range(59, -1, -1))  # newest first, none twice, none left out


def test_preferences_offer_only_the_channels_consented_to_with_a_path_to_consent(signed_in, shopper, brand):
    # The shopper consented to SMS marketing only: e-mail, WeChat and the rest are not offered.
    page = signed_in.get("/privacy/preferences/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    prefix = f"b{brand.pk}"
    offered = set(re.findall(rf'name="{prefix}-channels" value="(\w+)"', page))
    assert offered == {"sms"}
    assert 'href="/privacy/consents/"' in page and "Only channels you consented to are listed" in page
    # A channel not consented to cannot be chosen by posting it either.
    refused = signed_in.post("/privacy/preferences/", {"brand": brand.pk, f"{prefix}-channels": ["email"]})
    assert refused.status_code == 400 and not shopper.preferences.exists()

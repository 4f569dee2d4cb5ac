"""A privacy officer of one brand at work in Chromium (issue 25 items 8 and 10): a letter
asking for a copy of the data is recorded and answered from the request page, a consent
form signed on paper is recorded with its scan, and when the person later withdraws
through the API the officer sees which webhook receivers have the withdrawal and which
do not yet."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone, translation

from cdp import audit
from cdp.api_keys import issue_api_key
from cdp.models import ApiKey, AuditLog
from consent import services as consent_services
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from members.models import Identity, StoreMembership
from privacy.models import DataSubjectRequest
from tests.api.receiver import Receiver
from tests.consent.test_offline_consent import pdf_bytes
from tests.factories import BrandFactory, MemberFactory, StoreFactory, UserFactory
from webhooks import propagation
from webhooks import services as webhook_services

from .conftest import admin_login, check_accessibility, docs_screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def _zh(text: str) -> str:
    with translation.override("zh-hans"):
        return translation.gettext(text)


@pytest.fixture
def lotus(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    brand = BrandFactory(code="lotus", name="莲花美妆")
    tmall = StoreFactory(brand=brand, code="lotus-tmall", name="莲花天猫旗舰店", platform="tmall")
    counter = StoreFactory(brand=brand, code="lotus-sh-pos", name="上海专柜", platform="pos")
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms"], is_marketing=True
    )
    agreement = consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议", body="纸质版 v1",
        published_at=timezone.now() - dt.timedelta(days=90),
    )  # fmt: skip
    person = MemberFactory(phone="+8613800138000", name="王芳")
    Identity.objects.create(member=person, kind="phone", value=person.phone)
    StoreMembership.objects.create(member=person, store=tmall, store_member_id="T-1001")
    # Another brand's officer and member: nothing of theirs may show up.
    rose = BrandFactory(code="rose", name="玫瑰")
    StoreFactory(brand=rose, code="rose-jd", platform="jd")
    officer = UserFactory(username="officer-lotus", is_staff=True)
    officer.groups.add(Group.objects.get(name="Privacy officer"))
    brand.staff.add(officer)
    return {"brand": brand, "counter": counter, "purpose": purpose, "agreement": agreement, "person": person}


def test_officer_answers_a_letter_records_a_paper_form_and_follows_a_withdrawal(page, live_server, lotus):
    brand, person, purpose = lotus["brand"], lotus["person"], lotus["purpose"]
    with Receiver() as shop, Receiver() as crm:
        webhook_services.create_subscription(brand=brand, url=shop.url, events=["consent.changed"],
                                             description="Shop system")  # fmt: skip
        webhook_services.create_subscription(brand=brand, url=crm.url, events=["consent.changed"], description="CRM")
        crm.script = [500] * 50  # the CRM is down for the whole test
        webhook_services.forget_subscribers()

        # 1. A letter asking for a copy of the data, received three days ago.
        admin_login(page, live_server, "officer-lotus", reverse("admin:privacy_datasubjectrequest_offline"))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.fill("#id_person", "138 0013 8000")
        page.select_option("#id_kind", "access")
        page.select_option("#id_via", "letter")
        received = timezone.localtime() - dt.timedelta(days=3)
        page.fill("#id_received_at", received.strftime("%Y-%m-%d %H:%M:%S"))
        with page.expect_navigation():
            page.click("#content-main input[type=submit]")
        request = DataSubjectRequest.objects.get()
        assert (request.kind, request.received_via, request.member_id) == ("access", "letter", person.pk)
        assert page.url.endswith(reverse("admin:privacy_datasubjectrequest_change", args=[request.pk]))
        # The actions are on top of the request page.
        actions = page.locator("fieldset.dsr-actions")
        assert actions.is_visible()
        assert actions.bounding_box()["y"] < page.locator("fieldset.module").nth(1).bounding_box()["y"]
        assert "{#" not in page.inner_text("#content")  # no template comment shows as text
        check_accessibility(page, "the request page")
        docs_screenshot(page, "admin-officer-request")

        page.click(f"a[href='{reverse('admin:privacy_datasubjectrequest_complete', args=[request.pk])}']")
        page.fill("#id_note", "数据副本已于今日挂号寄出。")
        with page.expect_navigation():
            page.click("input[type=submit].default")
        request.refresh_from_db()
        assert request.status == "completed" and request.response == "数据副本已于今日挂号寄出。"
        assert page.locator(".messagelist .success").count() == 1

        # 2. A consent form signed at the Shanghai counter, with its scan.
        page.goto(live_server.url + reverse("admin:consent_consentevent_changelist"))
        with page.expect_navigation():
            page.click(f"a[href='{reverse('admin:consent_consentevent_paper')}']")
        assert page.locator("#paper-consent").get_attribute("data-brand") == str(brand.pk)
        assert page.locator("#id_store option", has_text="rose").count() == 0  # only the officer's brand
        page.fill("#id_phone", "138 0013 8000")
        page.select_option("#id_store", str(lotus["counter"].pk))
        page.fill("#id_signed_on", (timezone.localdate() - dt.timedelta(days=1)).isoformat())
        page.select_option("#id_notice", str(lotus["agreement"].pk))
        page.select_option(f"#id_choice__{purpose.pk}__sms", "granted")
        page.fill("#id_reference", "SH-2026-0815")
        scan = pdf_bytes("王芳 同意接收短信营销 签字")
        page.set_input_files("#id_scan", {"name": "signed-form.pdf", "mimeType": "application/pdf", "buffer": scan})
        check_accessibility(page, "the paper consent page")
        docs_screenshot(page, "admin-offline-consent")
        with page.expect_navigation():
            page.click("#paper-consent input[type=submit]")
        grant = ConsentEvent.objects.get(source_type="paper_form")
        assert page.url.endswith(f"?member={person.pk}")
        assert page.locator(f"#result_list a[href*='/consentevent/{grant.pk}/change/']").count() == 1
        assert ConsentState.objects.get(member=person, purpose=purpose).action == "granted"
        assert AuditLog.objects.filter(action="consent.paper_recorded", actor_user__username="officer-lotus").exists()

        page.goto(live_server.url + reverse("admin:consent_consentevent_receipt", args=[grant.pk]))
        assert page.locator("#receipt-scan").get_attribute("data-scan-state") == "intact"
        opened = page.request.get(live_server.url + page.locator("#receipt-scan a").get_attribute("href"))
        assert opened.status == 200 and opened.body() == scan

        # 3. The person withdraws through a store system using the brand's API.
        _key, raw = issue_api_key(ApiKey(name="pos", brand=brand, scopes=["consent:write"]),
                                  actor=audit.Actor(type="system", label="tests"))  # fmt: skip
        answer = page.request.post(
            live_server.url + "/api/v1/consent-events/",
            headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
            data=json.dumps(
                {
                    "external_id": "pos-w-1",
                    "phone": "13800138000",
                    "purpose": "marketing",
                    "channel": "sms",
                    "action": "withdrawn",
                    "occurred_at": timezone.now().isoformat(),
                }
            ),  # fmt: skip
        )
        assert answer.status == 201, answer.text()
        withdrawal = ConsentEvent.objects.get(action="withdrawn")
        assert {row.receiver: row.state for row in propagation.receipt_rows(withdrawal)} == {
            "Shop system": propagation.ACKNOWLEDGED, "CRM": propagation.ON_ITS_WAY,
        }  # fmt: skip

        # 4. The officer's list of withdrawals not yet received everywhere names the CRM.
        page.goto(live_server.url + reverse("admin:consent_consentevent_changelist"))
        with page.expect_navigation():
            page.click(f"a[href='{reverse('admin:webhooks_delivery_withdrawals')}']")
        row = page.locator("#content-main tbody tr",
                           has=page.locator(f"a[href$='/consentevent/{withdrawal.pk}/change/']"))  # fmt: skip
        assert row.count() == 1
        pending = row.locator("ul.dsr-passed strong").inner_text()
        assert pending == f"CRM: {_zh('on its way')}"  # bold: not received yet
        assert f"Shop system: {_zh('received')}" in row.locator("ul.dsr-passed").inner_text()
        check_accessibility(page, "the withdrawals page")

        # The withdrawal's receipt says the same, receiver by receiver.
        page.goto(live_server.url + reverse("admin:consent_consentevent_receipt", args=[withdrawal.pk]))
        passed = page.locator("ul li").all_inner_texts()
        assert any(text.startswith(f"CRM: {_zh('on its way')}") for text in passed)
        assert any(text.startswith(f"Shop system: {_zh('received')}") for text in passed)
    assert shop.payloads() and crm.requests  # both were really called

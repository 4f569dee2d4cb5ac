"""A shopper's whole visit to the privacy center in real Chromium at 390×844: sign in by
e-mail code, withdraw SMS marketing, find it in the history with its receipt, read the
pages in Russian and Traditional Chinese, download the data zip, delete everything.
Every page is screenshotted into artifacts/ and checked with axe-core."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.core import mail

from consent.models import Action, ConsentEvent, SourceType
from members.models import Member

from ..consent.conftest import marketing_purpose  # noqa: F401
from ..privacy.privacy_fixtures import *  # noqa: F403
from ..privacy.privacy_fixtures import code_from
from .conftest import ARTIFACTS, check_accessibility, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def visit(page, live_server, path: str, name: str) -> None:
    page.goto(live_server.url + path)
    screenshot(page, name)
    check_accessibility(page, name)


def test_shopper_journey(page, live_server, shopper, brand, purposes):
    brand.color = "#c2185b"
    brand.save()
    # Sign in by e-mail code.
    page.goto(live_server.url + "/privacy/")
    assert "/privacy/accounts/login/code/" in page.url
    screenshot(page, "01-sign-in")
    check_accessibility(page, "sign-in")
    page.get_by_label("电子邮件").fill("xiaohua@example.com")
    page.get_by_role("button", name="发送验证码").click()
    page.wait_for_url(re.compile(r"/login/code/confirm/"))
    screenshot(page, "02-enter-code")
    check_accessibility(page, "enter-code")
    code = code_from(mail.outbox[-1].body)
    page.locator("input[name=code]").fill(code)
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    page.wait_for_url(live_server.url + "/privacy/")
    assert page.get_by_role("heading", name="谁保存了您的数据").is_visible()
    assert page.get_by_role("cell", name=re.compile("莲花天猫旗舰店")).is_visible()
    screenshot(page, "03-overview")
    check_accessibility(page, "overview")

    # Withdraw SMS marketing with one tap (the script saves it in place).
    page.goto(live_server.url + "/privacy/consents/")
    switch = page.locator(f"#p-{purposes['marketing'].pk}-sms button[role=switch]")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    page.wait_for_function(
        f"document.querySelector('#p-{purposes['marketing'].pk}-sms button[role=switch]').getAttribute('aria-checked') === 'false'"
    )
    page.wait_for_function("document.getElementById('live').textContent.startsWith('已关闭')")
    screenshot(page, "04-consents")
    check_accessibility(page, "consents")
    withdrawal = ConsentEvent.objects.filter(member=shopper).order_by("-id").first()
    assert (withdrawal.action, withdrawal.channel, withdrawal.source_type) == (
        Action.WITHDRAWN, "sms", SourceType.PRIVACY_CENTER,
    )  # fmt: skip

    # The withdrawal is the newest entry of the history, with its receipt.
    page.goto(live_server.url + "/privacy/history/")
    first = page.locator("ol.timeline").first.locator("li").first
    assert "撤回" in first.inner_text() and "短信" in first.inner_text()
    screenshot(page, "05-history")
    check_accessibility(page, "history")
    first.get_by_role("link", name=re.compile("凭证")).click()
    page.wait_for_url(re.compile(f"/history/{withdrawal.pk}/receipt/$"))
    assert withdrawal.hash in page.content()
    screenshot(page, "06-receipt")
    check_accessibility(page, "receipt")

    visit(page, live_server, "/privacy/preferences/", "07-preferences")

    # Switch language: Russian, then Traditional Chinese (the menu applies on change).
    page.goto(live_server.url + "/privacy/consents/")
    with page.expect_navigation():
        page.get_by_label("语言").select_option("ru")
    assert page.get_by_role("heading", name="Ваши согласия").is_visible()
    assert page.locator("html").get_attribute("lang") == "ru"
    screenshot(page, "08-consents-ru")
    check_accessibility(page, "consents-ru")
    with page.expect_navigation():
        page.get_by_label("Язык").select_option("zh-hant")
    assert page.get_by_role("heading", name="您的同意").is_visible()
    assert page.locator("html").get_attribute("lang") == "zh-hant"
    screenshot(page, "09-consents-zh-hant")
    with page.expect_navigation():
        page.get_by_label("語言").select_option("zh-hans")

    # Download the data zip and look inside.
    page.goto(live_server.url + "/privacy/data/")
    screenshot(page, "10-my-data")
    check_accessibility(page, "my-data")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="下载我的数据").click()
    download = download_info.value
    target = ARTIFACTS / "privacy-my-data.zip"
    download.save_as(str(target))
    archive = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
    assert {"data.json", "orders.csv", "consent_events.csv"} <= set(archive.namelist())
    data = json.loads(archive.read("data.json"))
    assert data["profile"]["name"] == "王小花" and len(data["orders"]) == 3
    assert data["consent_events"][-1]["action"] == "withdrawn"

    # Request deletion, with its confirmation step.
    page.get_by_role("link", name="删除我的数据…").click()
    page.wait_for_url(re.compile("/data/delete/$"))
    screenshot(page, "11-delete")
    check_accessibility(page, "delete")
    page.get_by_role("button", name="删除我的数据").click()
    assert page.url.endswith("/data/delete/")  # the tick is required: the browser says so
    page.get_by_label(re.compile("我了解")).check()
    page.get_by_role("button", name="删除我的数据").click()
    page.get_by_role("heading", name="正在删除您的数据").wait_for()
    screenshot(page, "12-deleted")
    check_accessibility(page, "deleted")
    shopper.refresh_from_db()
    assert shopper.status == Member.Status.ERASED and shopper.phone == ""
    page.goto(live_server.url + "/privacy/")
    assert "/privacy/accounts/login/code/" in page.url  # signed out


def test_other_pages_are_accessible(page, live_server, account):
    """The pages the journey does not pass: password sign-in, an account without a
    profile, and allauth's e-mail and phone management in the privacy center layout."""
    visit(page, live_server, "/privacy/accounts/login/", "13-password-sign-in")
    page.locator("#id_login").fill("xiaohua@example.com")
    account.user.set_password("a long Passphrase 42")
    account.user.save()
    page.locator("#id_password").fill("a long Passphrase 42")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(live_server.url + "/privacy/")
    visit(page, live_server, "/privacy/accounts/email/", "14-sign-in-details")
    visit(page, live_server, "/privacy/accounts/phone/change/", "15-phone")
    account.member = None
    account.save()
    visit(page, live_server, "/privacy/", "16-not-linked")
    assert page.get_by_role("heading", name="尚未关联资料").is_visible()

"""Signing in to the privacy center in real Chromium, from the first page to the page
with the person's own data: by SMS as a shopper a store knows by phone only (also with
a Russian local number and the country choice), and by e-mail as one it knows by e-mail
only. Every page the browser requests, redirects included, is recorded, so a loop
between two pages fails with its path instead of a timeout."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from privacy import sms

from ..privacy.privacy_fixtures import *  # noqa: F403
from ..privacy.privacy_fixtures import code_from, member_known_by
from .conftest import check_accessibility, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page, live_server, *, fill, code_text, name: str) -> list[str]:
    """Open the privacy center, ask for a code with ``fill(page)``, enter the code
    ``code_text()`` returns; returns the paths the browser requested, redirects included."""
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url) if request.is_navigation_request() else None)
    page.goto(live_server.url + "/privacy/")
    assert "/privacy/accounts/login/code/" in page.url
    fill(page)
    page.get_by_role("button", name="发送验证码").click()
    page.wait_for_url(re.compile(r"/login/code/confirm/"))
    page.locator("input[name=code]").fill(code_from(code_text()))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    try:
        page.wait_for_url(live_server.url + "/privacy/", timeout=5_000)
    except Exception:  # Playwright's timeout: say where the browser went instead
        paths = [url.removeprefix(live_server.url) for url in visited]
        pytest.fail(f"{name}: not on the overview after {len(paths)} requests: {paths[:10]} …")
    page.wait_for_load_state()
    screenshot(page, f"sign-in-{name}")
    check_accessibility(page, f"overview after {name}")
    return [url.removeprefix(live_server.url) for url in visited]


def assert_own_overview(page, member, store) -> None:
    assert page.get_by_role("heading", name="谁保存了您的数据").is_visible()
    assert page.get_by_role("heading", name=store.brand.name).is_visible()
    assert page.get_by_role("cell", name=re.compile(store.name)).is_visible()
    assert page.get_by_text(member.name, exact=True).is_visible()


def test_phone_only_shopper_signs_in_by_sms(page, live_server, tmall):
    member = member_known_by(tmall, phone="+8613500135000", name="赵手机", store_member_id="P1")

    def fill(page):
        check_accessibility(page, "sign-in")
        assert page.get_by_label("国家或地区").input_value() == "CN"
        page.get_by_label("手机号").fill("135 0013 5000")

    visited = sign_in(page, live_server, fill=fill, code_text=lambda: sms.outbox[-1].text, name="sms")
    assert_own_overview(page, member, tmall)
    assert not any("confirm-email" in path for path in visited), visited
    assert mail.outbox == []


def test_russian_shopper_signs_in_with_a_local_number(page, live_server, tmall):
    member = member_known_by(tmall, phone="+79171234567", name="Иван Петров", store_member_id="R1")

    def fill(page):
        page.get_by_label("国家或地区").select_option("RU")
        page.get_by_label("手机号").fill("8 917 123-45-67")

    sign_in(page, live_server, fill=fill, code_text=lambda: sms.outbox[-1].text, name="sms-ru")
    assert sms.outbox[-1].phone == "+79171234567"
    assert_own_overview(page, member, tmall)


def test_email_only_shopper_signs_in_by_email(page, live_server, jd):
    member = member_known_by(jd, email="mail.only@example.com", name="钱邮件", store_member_id="E1")

    def fill(page):
        page.get_by_label("电子邮件").fill("mail.only@example.com")

    sign_in(page, live_server, fill=fill, code_text=lambda: mail.outbox[-1].body, name="email")
    assert_own_overview(page, member, jd)
    assert sms.outbox == []


def test_new_code_button_counts_down_and_then_sends_a_new_code(page, live_server, tmall, settings):
    """The cooldown comes from the server (PRIVACY_CODE_RESEND_SECONDS, short here); the
    page counts it down, keeps the button disabled meanwhile, then enables it, and the new
    code signs the person in."""
    settings.PRIVACY_CODE_RESEND_SECONDS = 4
    member = member_known_by(tmall, phone="+886912345678", name="林台北", store_member_id="TW1")
    page.goto(live_server.url + "/privacy/")
    page.get_by_label("国家或地区").select_option("TW")
    page.get_by_label("手机号").fill("0912 345 678")
    page.get_by_role("button", name="发送验证码").click()
    page.wait_for_url(re.compile(r"/login/code/confirm/"))
    assert [m.phone for m in sms.outbox] == ["+886912345678"]

    wait = page.locator("#resend-wait")
    resend = page.locator("form[data-resend] button[type=submit]")
    seconds = [int(re.search(r"\d+", wait.inner_text()).group(0))]
    assert 1 <= seconds[0] <= 4 and resend.is_disabled()
    check_accessibility(page, "code page while waiting")
    page.wait_for_function(
        f"() => /\\d+/.test(document.getElementById('resend-wait').textContent) && "
        f"parseInt(document.getElementById('resend-wait').textContent.match(/\\d+/)[0], 10) < {seconds[0]}"
    )
    seconds.append(int(re.search(r"\d+", wait.inner_text()).group(0)))
    assert seconds[1] < seconds[0] and resend.is_disabled()
    screenshot(page, "code-countdown")

    page.wait_for_function("() => !document.querySelector('form[data-resend] button[type=submit]').disabled")
    assert wait.is_hidden()
    resend.click()
    page.wait_for_url(re.compile(r"/login/code/confirm/"))
    page.wait_for_load_state()
    assert len(sms.outbox) == 2
    assert page.locator("#resend-wait").is_visible() and resend.is_disabled()  # the next cooldown runs
    page.locator("input[name=code]").fill(code_from(sms.outbox[-1].text))
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    page.wait_for_url(live_server.url + "/privacy/")
    assert_own_overview(page, member, tmall)

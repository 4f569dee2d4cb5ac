"""Sign-in codes and phone changes cannot be brute-forced, and nobody can pump text
messages through the privacy center (privacy/limits.py, privacy.sms.refusal).

Every test goes through the pages as a person (or a script) does, following redirects to
the page they end on."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.core.cache import cache

from members.models import Identity
from privacy import sms
from privacy.models import PrivacyAccount

from .privacy_fixtures import *  # noqa: F403
from .privacy_fixtures import code_from, member_known_by

pytestmark = pytest.mark.django_db

REQUEST = "/privacy/accounts/login/code/"
CONFIRM = "/privacy/accounts/login/code/confirm/"
CHANGE_PHONE = "/privacy/accounts/phone/change/"
VERIFY_PHONE = "/privacy/accounts/phone/verify/"

SPENT = "该验证码输错次数过多，已失效。请重新获取验证码。"
WAIT_PAGE = "请稍候"
NOT_MOBILE = "验证码只能发送到手机号码"
NOT_SERVED = "我们无法向该国家或地区的号码发送短信"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def ask_for_code(client, phone: str, ip: str = "10.0.0.1", **headers):
    return client.post(REQUEST, {"phone": phone}, REMOTE_ADDR=ip, follow=True, **headers)


def enter_code(client, code: str, ip: str = "10.0.0.1"):
    return client.post(CONFIRM, {"code": code}, REMOTE_ADDR=ip, follow=True)


def final_path(response) -> str:
    return response.redirect_chain[-1][0] if response.redirect_chain else response.wsgi_request.path


@pytest.fixture
def phone_shoppers(tmall):
    return [
        member_known_by(tmall, phone=f"+86135001350{k:02d}", name=f"手机{k}", store_member_id=f"P{k}") for k in range(5)
    ]


# --- Five wrong codes, then only a new code helps ------------------------------------------


def test_sixth_try_is_refused_even_with_the_right_code(client, shopper):
    ask_for_code(client, "13800138000")
    code = code_from(sms.outbox[-1].text)
    for _ in range(4):
        response = enter_code(client, wrong(code))
        assert final_path(response) == CONFIRM and response.status_code == 200
        assert SPENT not in response.content.decode()
    fifth = enter_code(client, wrong(code))
    assert final_path(fifth) == REQUEST  # the code is gone: back to asking for one
    assert SPENT in fifth.content.decode()
    assert "登录失败次数过多" not in fifth.content.decode()  # not allauth's "try again later"

    sixth = enter_code(client, code)
    assert final_path(sixth) == REQUEST
    assert SPENT in sixth.content.decode()
    assert not sixth.wsgi_request.user.is_authenticated
    assert PrivacyAccount.objects.get(phone="+8613800138000").member is None

    # A new code works, and the note is gone.
    asked = ask_for_code(client, "13800138000")
    assert SPENT not in asked.content.decode()
    done = enter_code(client, code_from(sms.outbox[-1].text))
    assert final_path(done) == "/privacy/" and done.wsgi_request.user.is_authenticated
    assert SPENT not in done.content.decode()


def test_wrong_codes_are_counted_per_ip_across_numbers(client, settings, phone_shoppers):
    """A script trying one code against many numbers from one address is stopped, even
    when it happens to guess right."""
    settings.PRIVACY_RATE_WRONG_CODES = "3/h/ip,10/h/key,10/h/user"
    for k in range(3):
        ask_for_code(client, f"135001350{k:02d}")
        assert enter_code(client, "000000").status_code == 200
        client.logout()
    ask_for_code(client, "13500135003")
    response = enter_code(client, code_from(sms.outbox[-1].text))
    assert response.status_code == 429
    assert WAIT_PAGE in response.content.decode() and "输错验证码的次数过多" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated
    # Another address is not affected.
    client.logout()
    ask_for_code(client, "13500135004", ip="10.0.0.2")
    assert final_path(enter_code(client, code_from(sms.outbox[-1].text), ip="10.0.0.2")) == "/privacy/"


def test_wrong_codes_are_counted_per_number_across_codes_and_addresses(client, settings, phone_shoppers):
    settings.PRIVACY_RATE_WRONG_CODES = "100/h/ip,4/h/key,100/h/user"
    for ip in ("10.0.1.1", "10.0.1.2"):  # a new code each time: allauth's per-code count restarts
        ask_for_code(client, "13500135000", ip=ip)
        for _ in range(2):
            enter_code(client, "000000", ip=ip)
        client.logout()
    ask_for_code(client, "13500135000", ip="10.0.1.3")
    response = enter_code(client, code_from(sms.outbox[-1].text), ip="10.0.1.3")
    assert response.status_code == 429 and WAIT_PAGE in response.content.decode()


# --- Asking for codes -----------------------------------------------------------------------


def test_one_ip_asking_for_many_numbers_is_limited(client, settings, phone_shoppers):
    settings.SMS_BUDGET_PER_IP = 3
    for k in range(3):
        assert final_path(ask_for_code(client, f"135001350{k:02d}")) == CONFIRM
        client.logout()
    response = ask_for_code(client, "13500135003")
    assert response.status_code == 429
    page = response.content.decode()
    assert WAIT_PAGE in page and "目前无法再发送短信" in page and "分钟后再试" in page
    assert int(response["Retry-After"]) > 0
    assert len(sms.outbox) == 3


def test_one_number_asked_for_from_many_ips_is_limited(client, phone_shoppers):
    for k in range(3):  # allauth: 3 codes per number in 5 minutes, from wherever
        assert final_path(ask_for_code(client, "13500135000", ip=f"10.0.2.{k}")) == CONFIRM
        client.logout()
    response = ask_for_code(client, "13500135000", ip="10.0.2.9")
    assert response.status_code == 429 and "获取验证码的次数过多" in response.content.decode()
    assert len(sms.outbox) == 3


def test_the_sms_budget_per_number_holds_across_ips_and_hours_of_allauth(client, settings, phone_shoppers):
    settings.SMS_BUDGET_PER_NUMBER = 2
    for k in range(2):
        ask_for_code(client, "13500135000", ip=f"10.0.3.{k}")
        client.logout()
    response = ask_for_code(client, "13500135000", ip="10.0.3.9")
    assert response.status_code == 429
    assert len(sms.outbox) == 2


def test_codes_are_limited_per_account_by_phone_and_e_mail_together(client, settings, shopper):
    settings.PRIVACY_RATE_CODE_REQUESTS = "2/h/user"
    client.post(REQUEST, {"email": "xiaohua@example.com"}, REMOTE_ADDR="10.0.4.1")
    client.logout()
    user = PrivacyAccount.objects.get(user__email="xiaohua@example.com").user
    # The same person's phone, on the same account (as after signing in by phone once).
    PrivacyAccount.objects.filter(user=user).update(phone="+8613800138000", phone_verified=True)
    assert final_path(ask_for_code(client, "13800138000", ip="10.0.4.2")) == CONFIRM
    client.logout()
    response = client.post(REQUEST, {"email": "xiaohua@example.com"}, REMOTE_ADDR="10.0.4.3", follow=True)
    assert response.status_code == 429
    assert len(mail.outbox) == 1 and len(sms.outbox) == 1


# --- SMS pumping: only mobile numbers of the brand's regions -------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"phone": "+7 809 555-12-34"}, NOT_MOBILE),  # Russian premium rate
        ({"phone": "8 800 555-12-34", "phone_country": "RU"}, NOT_MOBILE),  # toll-free
        ({"phone": "010 6234 5678", "phone_country": "CN"}, NOT_MOBILE),  # Beijing landline
        ({"phone": "400 812 3456", "phone_country": "CN"}, NOT_MOBILE),  # shared cost
        ({"phone": "2123 4567", "phone_country": "HK"}, NOT_MOBILE),  # Hong Kong landline
        ({"phone": "8123 4567", "phone_country": "HK"}, NOT_MOBILE),  # personal number range
        ({"phone": "0204 123 456", "phone_country": "TW"}, NOT_MOBILE),  # Taiwan premium rate
        ({"phone": "+1 202 555 0123"}, NOT_SERVED),  # another country, written with its code
        ({"phone": "+7 701 123 4567"}, NOT_SERVED),  # Kazakhstan mobile: +7, but not Russia
        ({"phone": "+44 7911 123456"}, NOT_SERVED),
    ],
)
def test_numbers_codes_cannot_go_to_are_refused_and_nothing_is_sent(client, data, error):
    response = client.post(REQUEST, data, follow=True)
    assert response.status_code == 200 and final_path(response) == REQUEST
    assert error in response.content.decode()
    assert sms.outbox == []


def test_a_region_the_brand_did_not_enable_is_refused(client, settings, tmall):
    settings.SMS_REGIONS = ["CN", "HK"]
    member_known_by(tmall, phone="+79171234567", name="Иван", store_member_id="R1")
    response = client.post(REQUEST, {"phone": "8 917 123-45-67", "phone_country": "RU"}, follow=True)
    assert NOT_SERVED in response.content.decode()
    response = client.post(REQUEST, {"phone": "+7 917 123-45-67", "phone_country": "CN"}, follow=True)
    assert NOT_SERVED in response.content.decode()
    assert '<option value="RU"' not in client.get(REQUEST).content.decode()
    assert sms.outbox == []


def test_the_gateway_is_never_handed_a_landline():
    """The last line, whatever a caller does: send_sms itself refuses."""
    with pytest.raises(sms.SmsError):
        sms.send_sms("+861062345678", "code 123456")
    assert sms.outbox == []


def test_the_global_budget_stops_all_texts_and_warns_first(client, settings, caplog, phone_shoppers):
    settings.SMS_BUDGET_GLOBAL = 5
    with caplog.at_level(logging.WARNING, logger="privacy.limits"):
        for k in range(5):
            assert final_path(ask_for_code(client, f"135001350{k:02d}", ip=f"10.0.5.{k}")) == CONFIRM
            client.logout()
        assert len(sms.outbox) == 5
        warnings = [r for r in caplog.records if r.name == "privacy.limits"]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert "4 of the 5" in warnings[0].getMessage()

        # Any number, any address: the 429 page, and nothing sent.
        response = ask_for_code(client, "13800138000", ip="10.0.5.99")
        assert response.status_code == 429
        assert "目前无法再发送短信" in response.content.decode()
        assert len(sms.outbox) == 5
        script = client.post(REQUEST, {"phone": "13800138000"}, REMOTE_ADDR="10.0.5.98", HTTP_ACCEPT="application/json")
    assert script.status_code == 429
    assert script["Content-Type"] == "application/problem+json"
    body = script.json()
    assert body["status"] == 429 and body["type"].endswith("/rate-limited")
    assert "目前无法再发送短信" in body["detail"] and int(script["Retry-After"]) == body["retry_after"] > 0
    assert len(sms.outbox) == 5
    assert any(r.levelno == logging.ERROR and "used up" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("language", "heading", "reason"),
    [
        ("en", "Please wait a moment", "We cannot send more text messages right now."),
        ("ru", "Пожалуйста, подождите", "Сейчас мы не можем отправить больше SMS."),
        ("zh-hant", "請稍候", "目前無法再傳送簡訊。"),
    ],
)
def test_the_429_page_speaks_the_persons_language(client, settings, language, heading, reason, phone_shoppers):
    settings.SMS_BUDGET_GLOBAL = 1
    ask_for_code(client, "13500135000", HTTP_ACCEPT_LANGUAGE=language)
    client.logout()
    response = ask_for_code(client, "13500135001", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 429
    page = response.content.decode()
    assert heading in page and reason in page
    assert f'<html lang="{language}">' in page


# --- Changing the phone: the new number's code, with the same limits ----------------------


def test_changing_the_phone_needs_the_new_numbers_code(signed_in, account, other_shopper):
    response = signed_in.post(CHANGE_PHONE, {"phone": "139 0013 9000"}, follow=True)
    assert final_path(response) == VERIFY_PHONE
    code = code_from(sms.outbox[-1].text)
    # Without the code nothing changes, and the other profile is not merged.
    signed_in.post(VERIFY_PHONE, {"code": ""}, follow=True)
    signed_in.get("/privacy/")
    account.refresh_from_db()
    other_shopper.refresh_from_db()
    assert account.phone is None and other_shopper.merged_into_id is None
    for _ in range(3):
        signed_in.post(VERIFY_PHONE, {"code": wrong(code)}, follow=True)
    last = signed_in.post(VERIFY_PHONE, {"code": wrong(code)}, follow=True)  # the 5th try (one was empty)
    assert final_path(last) == CHANGE_PHONE and SPENT in last.content.decode()
    again = signed_in.post(VERIFY_PHONE, {"code": code}, follow=True)  # the right one, too late
    assert final_path(again) == CHANGE_PHONE and SPENT in again.content.decode()
    account.refresh_from_db()
    other_shopper.refresh_from_db()
    assert account.phone is None and other_shopper.merged_into_id is None


def test_changing_the_phone_with_its_code_merges_the_profiles(signed_in, account, shopper, other_shopper):
    signed_in.post(CHANGE_PHONE, {"phone": "139 0013 9000"}, follow=True)
    response = signed_in.post(VERIFY_PHONE, {"code": code_from(sms.outbox[-1].text)}, follow=True)
    assert response.status_code == 200
    account.refresh_from_db()
    shopper.refresh_from_db()
    other_shopper.refresh_from_db()
    assert (account.phone, account.phone_verified) == ("+8613900139000", True)
    assert {shopper.status, other_shopper.status} == {"active", "merged"}


def test_changing_the_phone_again_and_again_gets_the_429_page(signed_in, account):
    first = signed_in.post(CHANGE_PHONE, {"phone": "139 0013 9000"}, follow=True)
    assert final_path(first) == VERIFY_PHONE
    second = signed_in.post(CHANGE_PHONE, {"phone": "137 0013 7000"}, follow=True)
    assert second.status_code == 429
    page = second.content.decode()
    assert WAIT_PAGE in page and "返回隐私中心" in page
    assert len(sms.outbox) == 1
    account.refresh_from_db()
    assert account.phone is None


def test_phone_change_codes_count_as_wrong_codes_of_the_account(signed_in, settings, account):
    settings.PRIVACY_RATE_WRONG_CODES = "100/h/ip,100/h/key,2/h/user"
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "change_phone": "10/m/user"}
    signed_in.post(CHANGE_PHONE, {"phone": "139 0013 9000"}, follow=True)
    for _ in range(2):
        signed_in.post(VERIFY_PHONE, {"code": "000000"}, follow=True)
    # A new number and a new code do not start the account's count again.
    signed_in.post(CHANGE_PHONE, {"phone": "137 0013 7000"}, follow=True)
    response = signed_in.post(VERIFY_PHONE, {"code": code_from(sms.outbox[-1].text)}, follow=True)
    assert response.status_code == 429 and "输错验证码的次数过多" in response.content.decode()
    account.refresh_from_db()
    assert account.phone is None


def test_phone_change_to_a_landline_is_refused_and_nothing_is_sent(signed_in, account):
    response = signed_in.post(CHANGE_PHONE, {"phone": "010 6234 5678"}, follow=True)
    assert response.status_code == 200 and NOT_MOBILE in response.content.decode()
    assert sms.outbox == []


# --- Redis away: limits per process, never a 500 ----------------------------------------------

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_with_redis_away_sign_in_works_and_limits_still_hold(client, settings, phone_shoppers):
    settings.CACHES = {
        "default": {
            "BACKEND": "cdp.cache.ResilientRedisCache",
            "LOCATION": CLOSED,
            "KEY_PREFIX": "cdp",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    settings.SMS_BUDGET_PER_NUMBER = 2
    cache.clear()
    ask_for_code(client, "13500135000")
    response = enter_code(client, code_from(sms.outbox[-1].text))
    assert final_path(response) == "/privacy/" and response.wsgi_request.user.is_authenticated
    client.logout()
    ask_for_code(client, "13500135000", ip="10.0.6.2")
    client.logout()  # a fresh visitor: a pending sign-in would only be resumed
    response = ask_for_code(client, "13500135000", ip="10.0.6.3")
    assert response.status_code == 429  # counted in this process's memory
    assert len(sms.outbox) == 2
    assert Identity.objects.filter(value="+8613500135000").exists()

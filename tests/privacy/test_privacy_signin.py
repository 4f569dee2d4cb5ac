"""Signing in to the privacy center and claiming a profile a store imported."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test.client import RedirectCycleError

from privacy import sms
from privacy.models import PrivacyAccount
from tests.factories import UserFactory

from .privacy_fixtures import *  # noqa: F403
from .privacy_fixtures import code_from, member_known_by

pytestmark = pytest.mark.django_db

REQUEST = "/privacy/accounts/login/code/"
CONFIRM = "/privacy/accounts/login/code/confirm/"


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/privacy/consents/")
    assert response.status_code == 302
    assert response["Location"].startswith(REQUEST)


def test_sign_in_page_has_phone_and_email(client):
    response = client.get(REQUEST)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="phone"' in page and 'name="email"' in page
    assert response["Content-Security-Policy"].startswith("default-src 'self'")


def test_email_code_signs_in_and_claims_the_imported_member(client, shopper):
    response = client.post(REQUEST, {"email": "XiaoHua@Example.com"})
    assert response.status_code == 302 and response["Location"].startswith(CONFIRM)
    account = PrivacyAccount.objects.get(user__emailaddress__email="xiaohua@example.com")
    assert account.member is None  # nothing linked before the code proves ownership
    (message,) = mail.outbox
    response = client.post(CONFIRM, {"code": code_from(message.body)})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.member == shopper
    assert EmailAddress.objects.get(email="xiaohua@example.com").verified
    assert client.get("/privacy/").status_code == 200


def test_phone_code_by_sms_claims_the_member(client, shopper):
    response = client.post(REQUEST, {"phone": "138 0013 8000"})
    assert response.status_code == 302
    assert mail.outbox == []
    (text,) = sms.outbox
    assert text.phone == "+8613800138000"
    response = client.post(CONFIRM, {"code": code_from(text.text)})
    assert response.status_code == 302
    account = PrivacyAccount.objects.get(phone="+8613800138000")
    assert account.phone_verified and account.member == shopper


def test_wrong_code_links_nothing(client, shopper):
    client.post(REQUEST, {"email": "xiaohua@example.com"})
    response = client.post(CONFIRM, {"code": "WRONG1"})
    assert response.status_code == 200
    assert PrivacyAccount.objects.get().member is None


def test_unknown_address_gets_the_same_answer_and_no_account(client, shopper):
    known = client.post(REQUEST, {"email": "xiaohua@example.com"})
    client.logout()
    unknown = client.post(REQUEST, {"email": "nobody@example.com"})
    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert not EmailAddress.objects.filter(email="nobody@example.com").exists()
    assert "nobody@example.com" in mail.outbox[-1].body  # told privately that nothing is held
    assert not code_from_or_none(mail.outbox[-1].body)


def code_from_or_none(text: str) -> str | None:
    try:
        return code_from(text)
    except AssertionError:
        return None


def test_staff_address_never_gets_a_code(client, shopper):
    UserFactory(username="boss", email="boss@staff.example.com", is_staff=True)
    response = client.post(REQUEST, {"email": "boss@staff.example.com"})
    assert response.status_code == 302
    assert code_from_or_none(mail.outbox[-1].body) is None


def test_codes_are_rate_limited_per_address(client, shopper):
    for _ in range(3):
        client.post(REQUEST, {"email": "xiaohua@example.com"})
        client.logout()
    sent = len(mail.outbox)
    response = client.post(REQUEST, {"email": "xiaohua@example.com"})
    assert response.status_code == 429  # the 429 page (tests/privacy/test_code_limits.py)
    assert int(response["Retry-After"]) > 0
    assert len(mail.outbox) == sent


def test_password_login_works_after_setting_one(client, account):
    account.user.set_password("a long Passphrase 42")
    account.user.save()
    response = client.post(
        "/privacy/accounts/login/", {"login": "xiaohua@example.com", "password": "a long Passphrase 42"}
    )
    assert response.status_code == 302
    assert client.get("/privacy/consents/").status_code == 200


def test_failed_logins_are_rate_limited(client, account):
    for _ in range(5):
        client.post("/privacy/accounts/login/", {"login": "xiaohua@example.com", "password": "nope"})
    account.user.set_password("a long Passphrase 42")
    account.user.save()
    response = client.post(
        "/privacy/accounts/login/", {"login": "xiaohua@example.com", "password": "a long Passphrase 42"}
    )
    assert response.status_code == 200  # blocked for a while even with the right password


def test_signed_in_without_profile_sees_how_to_link(client):
    user = get_user_model().objects.create(username="lonely")
    PrivacyAccount.objects.create(user=user)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/privacy/")
    assert response.status_code == 200
    assert 'href="/privacy/accounts/email/"' in response.content.decode()
    assert client.get("/privacy/consents/").status_code == 302


def test_verifying_a_second_address_of_another_member_merges_them(signed_in, account, other_shopper):
    from privacy import rights

    member = rights.claim_contact(user=account.user, kind="email", value="other@example.com")
    other_shopper.refresh_from_db()
    assert other_shopper.merged_into_id == account.member_id or member.pk == other_shopper.pk
    account.refresh_from_db()
    assert account.member == member


def test_adding_and_confirming_an_email_claims_its_member(signed_in, account, shopper, other_shopper):
    response = signed_in.post("/privacy/accounts/email/", {"email": "other@example.com", "action_add": ""})
    assert response.status_code == 302
    other_shopper.refresh_from_db()
    assert other_shopper.merged_into_id is None  # not before the code
    response = signed_in.post("/privacy/accounts/confirm-email/", {"code": code_from(mail.outbox[-1].body)})
    assert response.status_code == 302
    shopper.refresh_from_db()
    other_shopper.refresh_from_db()
    # Both are this one person now: merged into the older record, the account follows.
    survivor = shopper if other_shopper.merged_into_id == shopper.pk else other_shopper
    account.refresh_from_db()
    assert account.member == survivor
    assert {shopper.status, other_shopper.status} == {"active", "merged"}


def test_adding_and_verifying_a_phone_by_sms(signed_in, account):
    account.member.identities.filter(kind="phone").delete()
    from members.models import Identity

    Identity.objects.create(member=account.member, kind="phone", value="+8613700137000")
    response = signed_in.post("/privacy/accounts/phone/change/", {"phone": "137 0013 7000"})
    assert response.status_code == 302
    (text,) = sms.outbox
    response = signed_in.post("/privacy/accounts/phone/verify/", {"code": code_from(text.text)})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.phone, account.phone_verified) == ("+8613700137000", True)


class RefusingGateway(sms.SmsBackend):
    def send(self, *, phone: str, text: str) -> None:
        raise sms.SmsError("quota exceeded")


def test_a_refusing_sms_gateway_is_a_message_not_a_crash(client, shopper, settings):
    settings.SMS_BACKEND = "tests.privacy.test_privacy_signin.RefusingGateway"
    response = client.post(REQUEST, {"phone": "13800138000"}, follow=True)
    assert response.status_code == 200
    assert "未能发送短信" in response.content.decode()


def test_unknown_phone_gets_the_same_answer_and_a_private_note(client, shopper):
    known = client.post(REQUEST, {"phone": "13800138000"})
    client.logout()
    unknown = client.post(REQUEST, {"phone": "13700137000"})
    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert not PrivacyAccount.objects.filter(phone="+8613700137000").exists()
    note = sms.outbox[-1]
    assert note.phone == "+8613700137000" and code_from_or_none(note.text) is None


def test_bad_phone_is_a_form_error_not_a_crash(client):
    response = client.post(REQUEST, {"phone": "12345"})
    assert response.status_code == 200
    assert "请输入有效的手机号" in response.content.decode()


# --- Every sign-in ends on the person's own overview --------------------------------------
#
# A sign-in is only done when the person sees their data: these follow every redirect.

OVERVIEW = "/privacy/"


@pytest.fixture
def phone_shopper(tmall):
    """A person a Tmall store knows by phone only: no e-mail address anywhere."""
    return member_known_by(tmall, phone="+8613500135000", name="赵手机", store_member_id="P1")


def sign_in_by_code(client, data: dict[str, str], code_text) -> object:
    """Open the privacy center, ask for a code, enter it, following every redirect as a
    browser does; returns the last response."""
    start = client.get(OVERVIEW, follow=True)
    assert start.redirect_chain == [(f"{REQUEST}?next=/privacy/", 302)]
    asked = client.post(REQUEST, {**data, "next": OVERVIEW}, follow=True)
    assert asked.status_code == 200
    assert asked.redirect_chain and asked.redirect_chain[-1][0].startswith(CONFIRM), asked.redirect_chain
    try:
        return client.post(CONFIRM, {"code": code_from(code_text()), "next": OVERVIEW}, follow=True)
    except RedirectCycleError as loop:
        pytest.fail(f"the sign-in loops: {[url for url, _status in loop.last_response.redirect_chain]}")


def assert_on_own_overview(response, member, store) -> None:
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == OVERVIEW, response.redirect_chain
    assert response.wsgi_request.path == OVERVIEW
    assert response.wsgi_request.user.is_authenticated
    page = response.content.decode()
    assert member.name in page and store.name in page and store.brand.name in page


def test_phone_only_member_signs_in_by_sms_to_their_overview(client, phone_shopper, tmall):
    response = sign_in_by_code(client, {"phone": "135 0013 5000"}, lambda: sms.outbox[-1].text)
    assert_on_own_overview(response, phone_shopper, tmall)
    assert mail.outbox == []  # nothing to verify by e-mail: the account has no address
    account = PrivacyAccount.objects.get(phone="+8613500135000")
    assert account.phone_verified and account.member == phone_shopper
    assert not EmailAddress.objects.filter(user=account.user).exists()


def test_phone_only_member_signs_in_again(client, phone_shopper, tmall):
    sign_in_by_code(client, {"phone": "13500135000"}, lambda: sms.outbox[-1].text)
    client.logout()
    response = sign_in_by_code(client, {"phone": "+86 135-0013-5000"}, lambda: sms.outbox[-1].text)
    assert_on_own_overview(response, phone_shopper, tmall)
    assert PrivacyAccount.objects.filter(phone="+8613500135000").count() == 1


def test_email_only_member_signs_in_by_email_to_their_overview(client, jd):
    member = member_known_by(jd, email="mail.only@example.com", name="钱邮件", store_member_id="E1")
    response = sign_in_by_code(client, {"email": "Mail.Only@example.com"}, lambda: mail.outbox[-1].body)
    assert_on_own_overview(response, member, jd)
    assert sms.outbox == []
    assert EmailAddress.objects.get(email="mail.only@example.com").verified


def test_member_with_phone_and_email_signs_in_by_sms(client, shopper, tmall):
    response = sign_in_by_code(client, {"phone": "13800138000"}, lambda: sms.outbox[-1].text)
    assert_on_own_overview(response, shopper, tmall)
    assert mail.outbox == []


def test_member_with_phone_and_email_signs_in_by_email(client, shopper, tmall):
    response = sign_in_by_code(client, {"email": "xiaohua@example.com"}, lambda: mail.outbox[-1].body)
    assert_on_own_overview(response, shopper, tmall)


def test_member_signs_in_by_email_then_by_sms(client, shopper, tmall):
    sign_in_by_code(client, {"email": "xiaohua@example.com"}, lambda: mail.outbox[-1].body)
    client.logout()
    response = sign_in_by_code(client, {"phone": "13800138000"}, lambda: sms.outbox[-1].text)
    assert_on_own_overview(response, shopper, tmall)
    # One account per contact point proven, both linked to the one member.
    assert set(PrivacyAccount.objects.values_list("member", flat=True)) == {shopper.pk}


def test_account_with_an_unverified_email_still_verifies_it(client, tmall):
    """Mandatory e-mail verification still holds for an account that has an address: a
    password sign-in with an unverified address is sent to enter the e-mail code."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="unverified", email="unverified@example.com")
    user.set_password("a long Passphrase 42")
    user.save()
    EmailAddress.objects.create(user=user, email="unverified@example.com", primary=True, verified=False)
    PrivacyAccount.objects.create(user=user)
    response = client.post(
        "/privacy/accounts/login/",
        {"login": "unverified@example.com", "password": "a long Passphrase 42"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/privacy/accounts/confirm-email/"
    assert not response.wsgi_request.user.is_authenticated
    response = client.post("/privacy/accounts/confirm-email/", {"code": code_from(mail.outbox[-1].body)}, follow=True)
    assert response.redirect_chain[-1][0] == OVERVIEW
    assert response.wsgi_request.user.is_authenticated


def test_password_sign_in_with_a_local_phone_number(client, phone_shopper, tmall):
    sign_in_by_code(client, {"phone": "13500135000"}, lambda: sms.outbox[-1].text)
    account = PrivacyAccount.objects.get(phone="+8613500135000")
    account.user.set_password("a long Passphrase 42")
    account.user.save()
    client.logout()
    response = client.post(
        "/privacy/accounts/login/", {"login": "135 0013 5000", "password": "a long Passphrase 42"}, follow=True
    )
    assert_on_own_overview(response, phone_shopper, tmall)


# --- Phone numbers in the shopper's local format ------------------------------------------


def test_sign_in_page_offers_the_countries_with_mainland_china_first(client):
    page = client.get(REQUEST).content.decode()
    assert '<select name="phone_country"' in page and 'aria-label="国家或地区"' in page
    assert '<option value="CN" selected>中国大陆 +86</option>' in page
    for option in ("俄罗斯 +7", "中国香港 +852", "中国澳门 +853", "中国台湾 +886"):
        assert option in page
    assert '<label for="id_phone">' in page and 'id="id_phone"' in page


@pytest.mark.parametrize(
    ("language", "russia"),
    [("en", "Russia +7"), ("ru", "Россия +7"), ("zh-hant", "俄羅斯 +7"), ("zh-hans", "俄罗斯 +7")],
)
def test_the_country_names_are_translated(client, language, russia):
    page = client.get(REQUEST, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f'<option value="RU">{russia}</option>' in page


def test_russian_local_number_with_the_country_choice_signs_in(client, tmall):
    member = member_known_by(tmall, phone="+79171234567", name="Иван Петров", store_member_id="R1")
    response = sign_in_by_code(client, {"phone": "8 917 123-45-67", "phone_country": "RU"}, lambda: sms.outbox[-1].text)
    assert sms.outbox[-1].phone == "+79171234567"
    assert_on_own_overview(response, member, tmall)


@pytest.mark.parametrize(
    ("country", "typed", "e164"),
    [
        ("CN", "138 0013 8000", "+8613800138000"),
        ("CN", "+86-138-0013-8000", "+8613800138000"),
        ("CN", "+7 917 123-45-67", "+79171234567"),  # written with its code: read as written
        ("RU", "8 (917) 123-45-67", "+79171234567"),
        ("HK", "9123 4567", "+85291234567"),
        ("MO", "6612 3456", "+85366123456"),
        ("TW", "0912-345-678", "+886912345678"),
    ],
)
def test_local_formats_are_read_in_the_chosen_country(client, country, typed, e164):
    response = client.post(REQUEST, {"phone": typed, "phone_country": country})
    assert response.status_code == 302 and response["Location"].startswith(CONFIRM)
    assert sms.outbox[-1].phone == e164  # nobody holds it: the private note, at the right number


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"phone": "8 917 123-45-67"}, "请输入有效的手机号"),  # a Russian local number read as Chinese
        ({"phone": "13800138000", "phone_country": "RU"}, "请输入有效的手机号"),
        ({"phone": "13800138000", "phone_country": "US"}, "请从列表中选择国家或地区"),
        ({"phone": "1" * 40, "phone_country": "CN"}, "请输入有效的手机号"),
        ({"phone": "电话", "phone_country": "HK"}, "请输入有效的手机号"),
    ],
)
def test_bad_numbers_and_countries_are_form_errors(client, data, error):
    response = client.post(REQUEST, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert sms.outbox == []


def test_staff_phone_never_gets_a_code(client, tmall):
    """A staff user whose account holds a phone is treated as unknown, as by e-mail."""
    staff = UserFactory(username="boss", is_staff=True)
    PrivacyAccount.objects.create(user=staff, phone="+8613500135000", phone_verified=True)
    response = client.post(REQUEST, {"phone": "13500135000"})
    assert response.status_code == 302 and response["Location"].startswith(CONFIRM)
    (note,) = sms.outbox
    assert note.phone == "+8613500135000" and code_from_or_none(note.text) is None


@pytest.mark.parametrize("module", ["privacy.adapter", "privacy.stages", "privacy.forms"])
def test_sign_in_modules_import_first_in_a_fresh_process(module):
    """A Celery worker may import these before any of allauth's login modules; allauth's
    stages module must not be loaded first (it failed with a circular import)."""
    import subprocess
    import sys

    code = f"import django; django.setup(); import {module}"
    env = {**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "cdp.test_settings"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_code_field_brings_up_the_number_pad_and_offers_the_texted_code(client, shopper):
    client.post(REQUEST, {"phone": "138 0013 8000"})
    page = client.get(CONFIRM).content.decode()
    field = next(tag for tag in page.split("<input") if 'name="code"' in tag)
    for attribute in ('inputmode="numeric"', 'autocomplete="one-time-code"', 'pattern="[0-9]*"', 'maxlength="6"'):
        assert attribute in field
    # Confirm is the main button; cancel is clearly secondary.
    buttons = re.findall(r'<button\s+class="([^"]+)"[^>]*>\s*(\S+)\s*</button>', page)
    assert ("button", "确认") in buttons and ("button secondary", "取消") in buttons

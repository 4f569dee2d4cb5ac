"""Signing in to the privacy center and claiming a profile a store imported."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail

from privacy import sms
from privacy.models import PrivacyAccount
from tests.factories import UserFactory

from .privacy_fixtures import *  # noqa: F403
from .privacy_fixtures import code_from

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
    assert response.status_code == 200  # the form again, with the error
    assert response.context["form"].errors
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

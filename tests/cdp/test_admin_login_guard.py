"""Admin sign-in is guarded: failed logins are limited and logged, idle staff sessions
end, and staff can turn on (administrators can be made to turn on) a second factor.

Every sign-in goes through /admin/login/ like a person's, following the redirects."""

from __future__ import annotations

import base64
import io
import logging
import re
from datetime import timedelta
from html import unescape

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.db.models import F
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from cdp import admin_auth
from cdp.models import AuditLog
from privacy.models import PrivacyAccount
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/"


@pytest.fixture
def client():
    """A browser that asks for English pages (one test asks for Chinese)."""
    from django.test import Client

    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def staff(db):
    return UserFactory(username="ming", is_staff=True, is_superuser=True)


@pytest.fixture
def administrator(db):
    user = UserFactory(username="admin-li", is_staff=True)
    user.groups.add(Group.objects.get(name=admin_auth.ADMINISTRATOR_GROUP))
    return user


def sign_in(client, username, password=PASSWORD, code=None, next_url="/admin/", **extra):
    data = {"username": username, "password": password, "next": next_url}
    if code is not None:
        data["otp_token"] = code
    return client.post(LOGIN, data, follow=True, **extra)


def page_text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def signed_in(client) -> bool:
    response = client.get("/admin/")
    return response.status_code == 200


def code_for(key: bytes, *, step_ahead: int = 0) -> str:
    """The code an authenticator app shows (``step_ahead`` 1: the next 30 s window, which the
    device also accepts, as a code already used is never accepted twice)."""
    return f"{totp(key, drift=step_ahead):06d}"


# --- Failed logins ----------------------------------------------------------------------


def test_five_wrong_passwords_lock_out_even_the_right_one(client, staff, caplog):
    for attempt in range(4):
        response = sign_in(client, "ming", "wrong password")
        assert response.status_code == 200, attempt
        assert "Please enter the correct username and password" in page_text(response)

    caplog.set_level(logging.WARNING)
    response = sign_in(client, "ming", "wrong password")
    assert response.status_code == 429
    text = page_text(response)
    assert "Too many failed sign-in attempts" in text and "Try again after" in text and "15 minutes" in text
    assert response["Retry-After"] == "900"

    response = sign_in(client, "ming", PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    locked = [r.getMessage() for r in caplog.records if r.name == "cdp.admin_auth"]
    assert locked and all("username='ming'" in m and "ip=127.0.0.1" in m for m in locked)


def test_after_the_cool_off_the_right_password_works(client, staff):
    for _ in range(5):
        sign_in(client, "ming", "wrong password")
    assert sign_in(client, "ming", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))

    response = sign_in(client, "ming", PASSWORD)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/admin/"
    assert signed_in(client)


def test_the_block_holds_one_address_only(client, staff):
    for _ in range(5):
        sign_in(client, "ming", "wrong password")
    response = sign_in(client, "ming", PASSWORD, REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 200 and response.redirect_chain[-1][0] == "/admin/"


def test_privacy_center_sign_in_is_not_counted_or_blocked(client):
    shopper = UserFactory(username="p-shopper", email="shopper@example.com")
    PrivacyAccount.objects.create(user=shopper)
    for _ in range(6):
        response = client.post("/privacy/accounts/login/", {"login": "shopper@example.com", "password": "nope"})
        assert response.status_code == 200  # allauth's own form and rate limits
    assert not AccessAttempt.objects.exists()


# --- Idle sessions ----------------------------------------------------------------------


def test_an_idle_staff_session_ends(client, staff, monkeypatch):
    assert sign_in(client, "ming").redirect_chain[-1][0] == "/admin/"
    start = admin_auth._now()
    monkeypatch.setattr(admin_auth, "_now", lambda: start + 31 * 60)

    response = client.get("/admin/members/member/", follow=True)
    assert response.redirect_chain[0][0] == "/admin/login/?next=%2Fadmin%2Fmembers%2Fmember%2F"
    assert "signed out after 30 minutes without activity" in page_text(response)
    assert not signed_in(client)


def test_activity_keeps_a_staff_session(client, staff, monkeypatch):
    sign_in(client, "ming")
    start = admin_auth._now()
    for minutes in (29, 58, 87):
        monkeypatch.setattr(admin_auth, "_now", lambda minutes=minutes: start + minutes * 60)
        assert client.get("/admin/members/member/").status_code == 200, minutes


def test_shoppers_privacy_sessions_are_not_affected(client, monkeypatch):
    shopper = UserFactory(username="p-lonely")
    PrivacyAccount.objects.create(user=shopper)
    client.force_login(shopper, backend="django.contrib.auth.backends.ModelBackend")
    start = admin_auth._now()
    monkeypatch.setattr(admin_auth, "_now", lambda: start + 5 * 60 * 60)
    response = client.get("/privacy/")
    assert response.status_code == 200
    assert 'href="/privacy/accounts/email/"' in response.content.decode()


# --- Second factor ----------------------------------------------------------------------


def set_up_authenticator(client) -> bytes:
    """On the setup page: read the secret as a person types it into the app, confirm."""
    response = client.get("/admin/two-factor/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html  # the QR code
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', html).group(1)
    key = base64.b32decode(secret.replace(" ", ""))

    response = client.post("/admin/two-factor/", {"code": "000000" if code_for(key) != "000000" else "111111"})
    assert "This code is not right" in page_text(response)
    assert not TOTPDevice.objects.filter(confirmed=True).exists()

    response = client.post("/admin/two-factor/", {"code": code_for(key)}, follow=True)
    assert response.redirect_chain[-1][0] == "/admin/"
    assert "Two-factor sign-in is on" in page_text(response)
    return key


def test_turning_on_the_second_factor_makes_login_ask_for_the_code(client, staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # retry at once after a wrong code (the lockout still counts)
    sign_in(client, "ming")
    key = set_up_authenticator(client)
    device = TOTPDevice.objects.get(user=staff)
    assert device.confirmed
    assert AuditLog.objects.filter(action="staff.two_factor_enabled", actor_label="ming").exists()
    client.post("/admin/logout/")

    response = sign_in(client, "ming")
    assert "Enter the 6-digit code from your authenticator app" in page_text(response)
    assert not signed_in(client)

    wrong = "123456" if code_for(key, step_ahead=1) != "123456" else "654321"
    response = sign_in(client, "ming", code=wrong)
    assert "This code is not right" in page_text(response)
    assert not signed_in(client)

    response = sign_in(client, "ming", code=code_for(key, step_ahead=1))
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/admin/"
    assert "Members, consent and segments" in page_text(response)


def test_wrong_codes_count_towards_the_lockout(client, staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    sign_in(client, "ming")
    key = set_up_authenticator(client)
    client.post("/admin/logout/")
    wrong = "123456" if code_for(key, step_ahead=1) != "123456" else "654321"
    statuses = [sign_in(client, "ming", code=wrong).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert sign_in(client, "ming", code=code_for(key, step_ahead=1)).status_code == 429


def test_required_for_administrators_holds_them_on_the_setup_page(client, administrator, settings):
    settings.ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    response = sign_in(client, "admin-li")
    assert response.redirect_chain[-1][0] == "/admin/two-factor/"
    assert "Administrators must use two-factor sign-in" in page_text(response)

    for url in ["/admin/", "/admin/members/member/", "/admin/auth/user/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == "/admin/two-factor/", url

    set_up_authenticator(client)
    assert client.get("/admin/auth/user/").status_code == 200
    response = client.post("/admin/two-factor/", {"code": "000000"})
    assert "Administrators must keep two-factor sign-in on" in page_text(response)
    assert TOTPDevice.objects.filter(user=administrator, confirmed=True).exists()


def test_required_setting_leaves_other_roles_alone(client, settings):
    settings.ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS = True
    marketer = UserFactory(username="mkt", is_staff=True)
    marketer.groups.add(Group.objects.get(name="Marketer"))
    response = sign_in(client, "mkt")
    assert response.redirect_chain[-1][0] == "/admin/"
    assert response.status_code == 200


def test_force_login_needs_no_code_unless_required(client, staff, settings):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    settings.ADMIN_REQUIRE_2FA_FOR_ADMINISTRATORS = True
    assert client.get("/admin/")["Location"] == "/admin/two-factor/"


def test_the_administrator_group_name_is_the_role_name():
    from insights.roles import ADMINISTRATOR

    assert admin_auth.ADMINISTRATOR_GROUP == ADMINISTRATOR


def test_the_login_page_asks_for_the_code_in_chinese(client):
    response = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = page_text(response)
    assert "动态验证码" in text and "仅在已开启两步登录时填写" in text


def test_a_lost_phone_is_reset_by_command(client, staff, settings):
    from django.core.management import call_command

    sign_in(client, "ming")
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    set_up_authenticator(client)
    client.post("/admin/logout/")
    call_command("reset_two_factor", "ming", stdout=io.StringIO())
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert AuditLog.objects.filter(action="staff.two_factor_reset", object_repr="ming").exists()
    assert sign_in(client, "ming").redirect_chain[-1][0] == "/admin/"

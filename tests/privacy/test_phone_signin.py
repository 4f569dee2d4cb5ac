"""Signing in by phone as people type their numbers: a country or region among those texts
go to, local formats, the phone keypad and autofill, errors in the person's language, and
"send me a new code" only after the server's cooldown."""

from __future__ import annotations

import re
import time

import pytest
from django.test import override_settings

from privacy import sms

from .privacy_fixtures import *  # noqa: F403
from .privacy_fixtures import code_from, member_known_by

pytestmark = pytest.mark.django_db

REQUEST = "/privacy/accounts/login/code/"
CONFIRM = "/privacy/accounts/login/code/confirm/"
WAIT_RE = re.compile(r'data-resend-in="(\d+)"')


def number_input(page: str) -> str:
    return re.search(r'<input[^>]*name="phone"[^>]*>', page).group(0)


def test_the_number_field_brings_up_the_phone_keypad_and_autofill(client):
    field = number_input(client.get(REQUEST).content.decode())
    assert 'type="tel"' in field and 'inputmode="tel"' in field and 'autocomplete="tel"' in field


@override_settings(SMS_REGIONS=["CN", "RU"])
def test_only_the_regions_texts_go_to_are_offered(client):
    page = client.get(REQUEST, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    options = re.findall(r'<option value="([A-Z]{2})"', page[page.index('name="phone_country"') :])
    assert options == ["CN", "RU"]
    # A number of a region no longer served is refused, also when typed with its code.
    response = client.post(REQUEST, {"phone": "+886 912 345 678", "phone_country": "CN"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "We cannot send text messages to numbers of this country or region." in response.content.decode()
    assert sms.outbox == []


@pytest.mark.parametrize(
    ("country", "typed", "e164"),
    [
        ("CN", "138 0013 8000", "+8613800138000"),
        ("CN", "+7 912 345-67-89", "+79123456789"),  # with its code: read as written
        ("RU", "+7 912 345-67-89", "+79123456789"),
        ("RU", "8 912 345-67-89", "+79123456789"),
        ("TW", "0912 345 678", "+886912345678"),
    ],
)
def test_a_local_format_signs_the_person_in_with_a_code_to_the_e164_number(client, tmall, country, typed, e164):
    member = member_known_by(tmall, phone=e164, name="林小姐", store_member_id="L1")

    response = client.post(REQUEST, {"phone": typed, "phone_country": country})

    assert response.status_code == 302 and response["Location"].startswith(CONFIRM)
    (text,) = sms.outbox
    assert text.phone == e164
    response = client.post(CONFIRM, {"code": code_from(text.text)}, follow=True)
    assert response.redirect_chain[-1][0] == "/privacy/"
    assert member.name in response.content.decode()


@pytest.mark.parametrize(
    ("language", "error"),
    [
        ("zh-hans", "请输入有效的手机号"),
        ("zh-hant", "請輸入有效的手機號碼"),
        ("en", "Please enter a valid mobile number."),
        ("ru", "Введите правильный номер мобильного"),
    ],
)
def test_an_invalid_number_is_a_form_error_in_the_persons_language(client, language, error):
    response = client.post(REQUEST, {"phone": "0912 345", "phone_country": "TW"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert sms.outbox == []


# --- A new code, after the cooldown -------------------------------------------------------


@pytest.fixture
def asked(client, tmall):
    """A person a store knows by phone, on the page the code is typed into."""
    member_known_by(tmall, phone="+8613500135000", name="赵手机", store_member_id="P1")
    response = client.post(REQUEST, {"phone": "135 0013 5000", "phone_country": "CN"})
    assert response.status_code == 302 and len(sms.outbox) == 1
    return client


def test_the_code_page_says_how_long_until_a_new_code(asked, settings):
    page = asked.get(CONFIRM, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    wait = int(WAIT_RE.search(page).group(1))
    assert settings.PRIVACY_CODE_RESEND_SECONDS - 5 <= wait <= settings.PRIVACY_CODE_RESEND_SECONDS
    assert f"You can ask for a new code in {wait} seconds." in page
    assert 'inputmode="numeric"' in page and 'autocomplete="one-time-code"' in page
    # Cancel and "new code" are secondary to the main action.
    assert re.search(r'class="button secondary" type="submit"[^>]*>Send me a new code<', page)
    assert 'class="button secondary" type="submit">Cancel<' in page


def test_a_new_code_before_the_cooldown_is_refused_and_nothing_is_sent(asked):
    response = asked.post(CONFIRM, {"action": "resend"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert response.redirect_chain[-1][0] == CONFIRM
    page = response.content.decode()
    assert re.search(r'<li class="error">You can ask for a new code in \d+ seconds\.</li>', page)
    assert len(sms.outbox) == 1


@pytest.mark.parametrize("language", ["ru", "zh-hant", "en"])
def test_the_countdown_has_every_plural_form_of_the_language(asked, language):
    """The script picks the form with Intl.PluralRules (Russian: 1, 2, 5 seconds differ)."""
    page = asked.get(CONFIRM, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    tag = re.search(r"<p[^>]*data-resend-in[^>]*>", page).group(0)
    for category in ("one", "few", "many", "other"):
        assert re.search(rf'data-{category}="[^"]*\{{n\}}[^"]*"', tag), category


def test_a_new_code_after_the_cooldown_is_sent_and_only_it_signs_in(asked, monkeypatch, settings):
    first = code_from(sms.outbox[0].text)
    later = time.time() + settings.PRIVACY_CODE_RESEND_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)

    response = asked.post(CONFIRM, {"action": "resend"}, follow=True, HTTP_ACCEPT_LANGUAGE="en")

    assert response.redirect_chain[-1][0] == CONFIRM
    assert len(sms.outbox) == 2 and sms.outbox[1].phone == "+8613500135000"
    second = code_from(sms.outbox[1].text)
    # The cooldown starts again from the new code.
    assert int(WAIT_RE.search(response.content.decode()).group(1)) == settings.PRIVACY_CODE_RESEND_SECONDS
    assert asked.post(CONFIRM, {"action": "resend"}).status_code == 302 and len(sms.outbox) == 2
    if first != second:
        assert asked.post(CONFIRM, {"code": first}).status_code == 200  # the old code is replaced
    response = asked.post(CONFIRM, {"code": second}, follow=True)
    assert response.redirect_chain[-1][0] == "/privacy/"

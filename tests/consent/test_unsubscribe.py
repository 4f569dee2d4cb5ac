"""Unsubscribe links: every marketing mail carries one (and the RFC 8058 one-click
headers); GET only asks, POST withdraws once, mail clients may POST without a CSRF token,
and a forged link changes nothing."""

from __future__ import annotations

import email
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.test import Client

from consent import optin, services, tokens
from consent.models import Action, ConsentEvent, ConsentState, Purpose
from consent.queries import can_contact
from members.masking import mask_email
from tests.consent.conftest import member_language


@pytest.fixture(autouse=True)
def _english(english):
    """These tests read the English wording; test_translations.py covers the others."""


@pytest.fixture(autouse=True)
def _receipts(consent_receipts):
    """Receipts on, as in production."""


@pytest.fixture
def subscribed(mail_subscriber, brand, marketing_purpose):
    """E-mail marketing confirmed through double opt-in (recorded through the service)."""
    for action in ("requested", "confirmed"):
        services.record_consent(
            member=mail_subscriber,
            brand=brand,
            purpose=marketing_purpose,
            channel="email",
            action=action,
            source_type="privacy_center",
        )
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").allowed
    return mail_subscriber


@pytest.fixture
def url(subscribed, brand, marketing_purpose) -> str:
    return optin.unsubscribe_url(subscribed, brand, marketing_purpose, "email")


@pytest.fixture
def path(url) -> str:
    return urlsplit(url).path


def withdrawals():
    return ConsentEvent.objects.filter(action=Action.WITHDRAWN)


def test_url_is_absolute(url):
    assert url.startswith(settings.SITE_URL + "/privacy/unsubscribe/")
    assert url.endswith("/")


def test_marketing_mail_carries_one_click_headers(subscribed, brand, marketing_purpose, url):
    message = EmailMessage("新品上市", "…", to=[subscribed.email])
    optin.add_unsubscribe_headers(message, subscribed, brand, marketing_purpose, "email")
    message.send()
    (sent,) = mail.outbox
    # Parsed back from the wire form: long header lines may be folded there.
    received = email.message_from_string(sent.message().as_string())
    assert "".join(received["List-Unsubscribe"].split()) == f"<{url}>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert optin.unsubscribe_headers(subscribed, brand, marketing_purpose) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_get_changes_nothing(client, path, subscribed, brand, marketing_purpose):
    count = ConsentEvent.objects.count()
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert brand.name in page
    assert marketing_purpose.name in page
    assert mask_email(subscribed.email) in page
    assert subscribed.email not in page  # the page is reachable by whoever has the link
    assert 'method="post"' in page
    assert ConsentEvent.objects.count() == count
    assert can_contact(subscribed, brand, marketing_purpose, "email").allowed


def test_post_withdraws(client, path, subscribed, brand, marketing_purpose):
    response = client.post(path, HTTP_USER_AGENT="Mozilla/5.0 test", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    assert member_language("You are unsubscribed") in response.content.decode()
    (event,) = withdrawals()
    assert event.source_type == "unsubscribe_link"
    assert event.channel == "email"
    assert event.evidence == {"ip": "198.51.100.7", "user_agent": "Mozilla/5.0 test", "one_click": False}
    assert can_contact(subscribed, brand, marketing_purpose, "email").reason == "withdrawn"


def test_post_withdraws_once(client, path):
    assert client.post(path).status_code == 200
    assert client.post(path).status_code == 200
    assert withdrawals().count() == 1
    # Afterwards the link shows the done page straight away.
    assert member_language("You are unsubscribed") in client.get(path).content.decode()


@pytest.mark.parametrize("form", ["urlencoded", "multipart"])
def test_one_click_post_works_without_csrf_token(path, subscribed, brand, marketing_purpose, form):
    mail_client = Client(enforce_csrf_checks=True)
    if form == "urlencoded":
        response = mail_client.post(
            path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = mail_client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    (event,) = withdrawals()
    assert event.evidence["one_click"] is True
    assert not can_contact(subscribed, brand, marketing_purpose, "email").allowed


def test_forged_token_is_rejected(client, path, subscribed, brand, marketing_purpose, other_member_token):
    count = ConsentEvent.objects.count()
    token = path.rstrip("/").rsplit("/", 1)[1]
    payload, signature = token.split(":")
    forged = [
        f"{payload}:{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}",  # altered signature
        other_member_token,  # someone else's ids under this link's signature
        tokens.make_opt_in_token(1),  # a token made for another use
        "nonsense",
    ]
    for bad in forged:
        for method in (client.get, client.post):
            response = method(f"/privacy/unsubscribe/{bad}/")
            assert response.status_code == 400
            assert "This link is not valid" in response.content.decode()
    assert ConsentEvent.objects.count() == count


@pytest.fixture
def other_member_token(path) -> str:
    token = path.rstrip("/").rsplit("/", 1)[1]
    payload, signature = token.split(":")
    member_id, rest = payload.split(".", 1)
    return f"{int(member_id) + 1}.{rest}:{signature}"


def test_links_never_expire(subscribed, brand, marketing_purpose, client):
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 5 * 365 * 86400):
        url = optin.unsubscribe_url(subscribed, brand, marketing_purpose, "email")
    assert client.post(urlsplit(url).path).status_code == 200
    assert withdrawals().count() == 1


def test_withdrawal_without_prior_consent_is_recorded(mail_subscriber, brand, marketing_purpose, client):
    """The person's explicit "no" is evidence too, and outranks older grants arriving late."""
    url = optin.unsubscribe_url(mail_subscriber, brand, marketing_purpose, "sms")
    assert client.post(urlsplit(url).path).status_code == 200
    state = ConsentState.objects.get(member=mail_subscriber, purpose=marketing_purpose, channel="sms")
    assert state.action == Action.WITHDRAWN


def test_purposes_without_a_channel_can_be_withdrawn(mail_subscriber, brand, client):
    analytics = Purpose.objects.create(brand=brand, code="analytics", name="数据分析")
    services.publish_notice(
        brand=brand, kind="purpose_notice", purpose=analytics, locale="zh-hans", title="分析告知", body="a"
    )
    services.record_consent(
        member=mail_subscriber, brand=brand, purpose=analytics, action="granted", source_type="store"
    )
    path = urlsplit(optin.unsubscribe_url(mail_subscriber, brand, analytics, "")).path
    page = client.get(path).content.decode()
    assert "数据分析" in page and "<form" in page  # the confirmation page names the purpose
    assert client.post(path).status_code == 200
    assert can_contact(mail_subscriber, brand, analytics).reason == "withdrawn"


def test_withdrawal_mails_a_receipt(client, path, subscribed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(path)
    (receipt,) = mail.outbox
    assert receipt.to == [subscribed.email]
    assert receipt.attachments


def test_pages_use_few_queries(client, path, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert client.get(path).status_code == 200
    with django_assert_max_num_queries(14):  # 4 of them savepoints
        assert client.post(path).status_code == 200
    with django_assert_max_num_queries(6):
        assert client.post(path).status_code == 200

"""E-mail double opt-in: the request mails a link; only the button on the linked page
confirms; stale, expired and forged links record nothing."""

from __future__ import annotations

import re
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from consent import optin, services, tokens
from consent.models import Action, ConsentEvent, ConsentState
from consent.queries import can_contact
from consent.services import ConsentError
from tests.consent.conftest import member_language
from tests.factories import MemberFactory


@pytest.fixture(autouse=True)
def _english(english):
    """These tests read the English wording; test_translations.py covers the others."""


LINK_RE = re.compile(r"https?://\S+/privacy/confirm/[^/\s\"<]+/")


@pytest.fixture(autouse=True)
def _receipts(consent_receipts):
    """Receipts on, as in production, so mail counts below are the real ones."""


def request_opt_in(member, brand, purpose, capture, **kwargs) -> ConsentEvent:
    with capture(execute=True):
        return optin.request_email_opt_in(
            member=member,
            brand=brand,
            purpose=purpose,
            source_type="privacy_center",
            evidence={"ip": "203.0.113.5"},
            **kwargs,
        )


def confirmation_mails() -> list:
    return [m for m in mail.outbox if LINK_RE.search(m.body)]


def link_path(message) -> str:
    return urlsplit(LINK_RE.search(message.body).group(0)).path


def email_state(member, purpose) -> ConsentState | None:
    return ConsentState.objects.filter(member=member, purpose=purpose, channel="email").first()


@pytest.fixture
def requested(mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks):
    return request_opt_in(mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks)


@pytest.fixture
def confirm_path(requested) -> str:
    (message,) = confirmation_mails()
    return link_path(message)


# --- The request and its mail ------------------------------------------------------------


def test_request_records_requested_and_mails_the_link(requested, mail_subscriber, brand, marketing_purpose):
    assert requested.action == Action.REQUESTED
    assert requested.channel == "email"
    assert requested.notice.title == "营销告知"
    (message,) = confirmation_mails()
    assert message.to == [mail_subscriber.email]
    assert brand.name in message.subject
    link = LINK_RE.search(message.body).group(0)
    assert link.startswith(settings.SITE_URL + "/privacy/confirm/")
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert link in html
    assert marketing_purpose.name in message.body
    assert f"/privacy/notices/{requested.notice_id}/" in message.body  # the text they agree to
    # Pending is not consent: e-mail marketing needs the confirmation.
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").reason == "pending_confirmation"


def test_no_mail_before_the_request_commits(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        optin.request_email_opt_in(
            member=mail_subscriber, brand=brand, purpose=marketing_purpose, source_type="privacy_center"
        )
    assert callbacks
    assert mail.outbox == []


@pytest.mark.parametrize(("locale", "expected"), [("en", "en"), ("", "zh-hans"), ("zh-CN", "zh-hans")])
def test_mail_speaks_the_members_language(
    brand, marketing_purpose, django_capture_on_commit_callbacks, locale, expected
):
    member = MemberFactory(locale=locale)
    request_opt_in(member, brand, marketing_purpose, django_capture_on_commit_callbacks)
    (message,) = confirmation_mails()
    assert f'<html lang="{expected}">' in message.alternatives[0][0]


def test_a_member_without_email_is_refused(brand, marketing_purpose, django_capture_on_commit_callbacks):
    member = MemberFactory(email="")
    with pytest.raises(ConsentError) as exc:
        request_opt_in(member, brand, marketing_purpose, django_capture_on_commit_callbacks)
    assert exc.value.field == "email"
    assert not ConsentEvent.objects.exists()


def test_requesting_again_when_confirmed_records_and_sends_nothing(
    client, confirm_path, mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(confirm_path)
    confirmed = email_state(mail_subscriber, marketing_purpose).event
    count, mails = ConsentEvent.objects.count(), len(confirmation_mails())

    again = request_opt_in(mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks)

    assert again == confirmed
    assert ConsentEvent.objects.count() == count
    assert len(confirmation_mails()) == mails


# --- The linked page ---------------------------------------------------------------------


def test_get_shows_the_page_and_changes_nothing(client, confirm_path, requested, brand, marketing_purpose):
    count = ConsentEvent.objects.count()
    response = client.get(confirm_path)
    assert response.status_code == 200
    page = response.content.decode()
    assert brand.name in page
    assert marketing_purpose.name in page
    assert 'method="post"' in page
    assert ConsentEvent.objects.count() == count
    assert email_state(requested.member, marketing_purpose).action == Action.REQUESTED


def test_post_confirms(client, confirm_path, requested, mail_subscriber, brand, marketing_purpose):
    response = client.post(confirm_path, HTTP_USER_AGENT="Mozilla/5.0 test", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    assert member_language("Subscription confirmed") in response.content.decode()
    confirmed = email_state(mail_subscriber, marketing_purpose).event
    assert confirmed.action == Action.CONFIRMED
    assert confirmed.source_type == "double_opt_in"
    assert confirmed.notice_id == requested.notice_id
    assert confirmed.evidence == {
        "ip": "198.51.100.7",
        "user_agent": "Mozilla/5.0 test",
        "request_event_id": requested.pk,
    }
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").allowed


def test_confirming_twice_is_idempotent(client, confirm_path, requested):
    first = client.post(confirm_path)
    count = ConsentEvent.objects.count()
    second = client.post(confirm_path)
    assert first.status_code == second.status_code == 200
    assert ConsentEvent.objects.count() == count
    assert ConsentEvent.objects.filter(action=Action.CONFIRMED).count() == 1
    # A later GET says it is done rather than asking again.
    assert member_language("Subscription confirmed") in client.get(confirm_path).content.decode()


def test_confirm_service_twice_returns_the_same_confirmation(requested):
    token = tokens.make_opt_in_token(requested.pk)
    first = optin.confirm_email_opt_in(token, evidence={"ip": "198.51.100.7"})
    second = optin.confirm_email_opt_in(token, evidence={"ip": "198.51.100.8"})
    assert first.pk == second.pk


def test_confirm_needs_the_csrf_token(confirm_path):
    """Only the unsubscribe view is exempt (one-click); confirming comes from our own page."""
    response = Client(enforce_csrf_checks=True).post(confirm_path)
    assert response.status_code == 403
    assert not ConsentEvent.objects.filter(action=Action.CONFIRMED).exists()


def test_confirming_after_a_withdrawal_records_nothing(client, confirm_path, requested, brand, marketing_purpose):
    services.record_consent(
        member=requested.member,
        brand=brand,
        purpose=marketing_purpose,
        channel="email",
        action="withdrawn",
        source_type="privacy_center",
    )
    count = ConsentEvent.objects.count()
    for response in (client.get(confirm_path), client.post(confirm_path)):
        assert response.status_code == 409
        assert "no longer applies" in response.content.decode()
    assert ConsentEvent.objects.count() == count
    with pytest.raises(optin.OptInSuperseded):
        optin.confirm_email_opt_in(tokens.make_opt_in_token(requested.pk), evidence={})
    assert ConsentEvent.objects.count() == count


def test_a_new_request_supersedes_the_old_link(
    client, confirm_path, mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    request_opt_in(mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks)
    old, new = confirmation_mails()
    assert client.post(link_path(old)).status_code == 409
    assert not ConsentEvent.objects.filter(action=Action.CONFIRMED).exists()
    assert client.post(link_path(new)).status_code == 200
    assert email_state(mail_subscriber, marketing_purpose).action == Action.CONFIRMED


def test_forged_link_is_rejected_and_records_nothing(client, confirm_path, requested):
    count = ConsentEvent.objects.count()
    token = confirm_path.rstrip("/").rsplit("/", 1)[1]
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # altered signature
        tokens.make_unsubscribe_token(requested.member_id, requested.brand_id, requested.purpose_id, "email"),
        "not-a-token",
    ]
    for bad in forged:
        for method in (client.get, client.post):
            response = method(f"/privacy/confirm/{bad}/")
            assert response.status_code == 400
            assert "This link is not valid" in response.content.decode()
    assert ConsentEvent.objects.count() == count


def test_expired_link_is_gone_and_records_nothing(client, requested):
    days = settings.DOUBLE_OPT_IN_MAX_AGE_DAYS
    with mock.patch("django.core.signing.time.time", return_value=time.time() - (days * 86400 + 60)):
        token = tokens.make_opt_in_token(requested.pk)
    count = ConsentEvent.objects.count()
    for method in (client.get, client.post):
        response = method(f"/privacy/confirm/{token}/")
        assert response.status_code == 410
        assert "This link has expired, ask for a new one" in response.content.decode()
    assert ConsentEvent.objects.count() == count


def test_confirmation_mails_a_receipt(client, confirm_path, mail_subscriber, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(confirm_path)
    receipts = [m for m in mail.outbox if m.attachments]
    assert len(receipts) == 1
    assert receipts[0].to == [mail_subscriber.email]


def test_pages_use_few_queries(client, confirm_path, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        assert client.get(confirm_path).status_code == 200
    with django_assert_max_num_queries(13):  # 4 of them savepoints, 1 the confirmation's member lock
        assert client.post(confirm_path).status_code == 200


# --- Tokens ------------------------------------------------------------------------------


def test_opt_in_token_round_trip_and_errors():
    token = tokens.make_opt_in_token(42)
    assert tokens.read_opt_in_token(token) == 42
    with pytest.raises(tokens.ForgedToken):
        tokens.read_opt_in_token(token + "x")
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 30 * 86400):
        old = tokens.make_opt_in_token(42)
    with pytest.raises(tokens.ExpiredToken):
        tokens.read_opt_in_token(old)
    assert issubclass(tokens.ExpiredToken, tokens.TokenError)
    assert not issubclass(tokens.ExpiredToken, tokens.ForgedToken)

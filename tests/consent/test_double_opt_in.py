"""E-mail double opt-in: the request mails a link; only the button on the linked page
confirms; stale, expired and forged links record nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from consent import optin, services, tokens, validation
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
    with django_assert_max_num_queries(14):  # 5 of them savepoints, 1 the confirmation's member lock
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


# --- E-mail grants from stores, the API, imports and staff (issue 22 item 6) --------------
# The person agreed elsewhere: their grant is a request we mail a link for, unless the
# source proves it ran a double opt-in itself. The API and the imports have their own
# tests (tests/api/test_consent.py, tests/imports/test_import_double_opt_in.py).

PROOF = {"confirmed_at": "2026-03-01T10:05:00+08:00", "ip": "198.51.100.20", "message_id": "<optin-1@tmall.example>"}
PROOF_KEPT = {
    "confirmed_at": "2026-03-01T02:05:00+00:00",
    "ip": "198.51.100.20",
    "message_id": "<optin-1@tmall.example>",
}


def relay(member, purpose, capture, *, action="granted", source_type="store", **kwargs) -> services.Recorded:
    """An e-mail grant a source passes on, its mails sent as after the commit."""
    with capture(execute=True):
        return services.record_consent(
            member=member, brand=purpose.brand, purpose=purpose, channel="email", action=action,
            source_type=source_type, **kwargs,
        )  # fmt: skip


@pytest.fixture
def relayed(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks) -> services.Recorded:
    return relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, external_id="tmall-1")


@pytest.fixture
def newsletter(brand):
    """A second purpose of the brand on e-mail."""
    from consent.models import Notice, Purpose

    purpose = Purpose.objects.create(brand=brand, code="newsletter", name="Newsletter", channels=["email"])
    services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                            title="Newsletter", body="v1")  # fmt: skip
    return purpose


def later(hours: float):
    """The clock ``hours`` from now (the ledger cannot be backdated)."""
    from django.utils import timezone

    return mock.patch("django.utils.timezone.now", return_value=timezone.now() + dt.timedelta(hours=hours))


def test_a_store_grant_becomes_a_request_and_the_link_confirms_it(
    client, relayed, mail_subscriber, brand, marketing_purpose
):
    assert relayed.created and relayed.event.action == Action.REQUESTED
    assert relayed.event.source_type == "store"
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").reason == "pending_confirmation"
    (message,) = confirmation_mails()
    assert message.to == [mail_subscriber.email]
    path = link_path(message)
    assert client.get(path).status_code == 200
    assert email_state(mail_subscriber, marketing_purpose).action == Action.REQUESTED
    assert client.post(path).status_code == 200
    confirmed = email_state(mail_subscriber, marketing_purpose).event
    assert confirmed.action == Action.CONFIRMED and confirmed.evidence["request_event_id"] == relayed.event.pk
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").allowed


def test_the_mail_names_the_store_where_the_person_agreed(
    mail_subscriber, tmall, marketing_purpose, django_capture_on_commit_callbacks
):
    relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, store=tmall)
    (message,) = confirmation_mails()
    assert f"您在 {tmall.name} 同意接收" in message.body  # the member's language, zh-hans
    assert f"您在 {tmall.name} 同意接收" in message.alternatives[0][0]


@pytest.mark.parametrize("source_type", ["store", "api_key", "import_job", "admin_user"])
def test_every_source_passing_a_grant_on_needs_double_opt_in(
    source_type, mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks
):
    for action in ("granted", "requested"):
        recorded = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, action=action,
                         source_type=source_type, external_id=f"{source_type}-{action}")  # fmt: skip
        assert recorded.event.action == Action.REQUESTED
    with pytest.raises(ConsentError) as refused:
        relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, action="confirmed",
              source_type=source_type)  # fmt: skip
    assert refused.value.field == "confirmation"
    assert refused.value.parts == ("confirmed_at", "ip", "message_id")
    assert email_state(mail_subscriber, marketing_purpose).action == Action.REQUESTED
    assert len(confirmation_mails()) == 1  # the second grant found the first request


def test_a_store_with_proof_of_its_own_double_opt_in_confirms(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    for action in ("confirmed", "granted"):
        recorded = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, action=action,
                         confirmation=PROOF, evidence={"checkbox": "订阅邮件"}, external_id=action)  # fmt: skip
        assert recorded.created and recorded.event.action == Action.CONFIRMED
        stored = ConsentEvent.objects.get(pk=recorded.event.pk)
        assert stored.evidence == {"checkbox": "订阅邮件", "confirmation": PROOF_KEPT}
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").allowed
    assert mail.outbox == []  # no link to confirm, and no receipt for what a store passes on


@pytest.mark.parametrize(
    ("proof", "parts"),
    [
        ({"confirmed_at": PROOF["confirmed_at"]}, ("ip", "message_id")),
        ({**PROOF, "ip": ""}, ("ip",)),
        ({**PROOF, "ip": "300.1.1.1"}, ("ip",)),
        ({**PROOF, "confirmed_at": "soon"}, ("confirmed_at",)),
        ({**PROOF, "confirmed_at": "2999-01-01T00:00:00+00:00"}, ("confirmed_at",)),
        ({**PROOF, "message_id": "x" * 251}, ("message_id",)),
    ],
)
def test_an_incomplete_or_wrong_proof_is_refused(
    proof, parts, mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks
):
    with pytest.raises(ConsentError) as refused:
        relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, confirmation=proof)
    assert (refused.value.field, refused.value.parts) == ("confirmation", parts)
    assert not ConsentEvent.objects.exists()


def test_our_own_pages_take_no_proof(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks):
    """The privacy center asks through ``request_email_opt_in``; a proof there is a mistake."""
    with pytest.raises(ConsentError) as refused:
        relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, action="requested",
              source_type="privacy_center", confirmation=PROOF)  # fmt: skip
    assert refused.value.field == "confirmation"


def test_a_second_grant_the_same_day_records_and_mails_nothing_and_the_first_link_works(
    client, relayed, mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks
):
    again = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, external_id="jd-1")
    assert not again.created and again.event == relayed.event
    assert ConsentEvent.objects.filter(channel="email").count() == 1
    (message,) = confirmation_mails()
    assert client.post(link_path(message)).status_code == 200
    assert email_state(mail_subscriber, marketing_purpose).action == Action.CONFIRMED


def test_a_grant_for_a_confirmed_person_records_and_mails_nothing(
    client, relayed, mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    (message,) = confirmation_mails()
    client.post(link_path(message))
    confirmation = email_state(mail_subscriber, marketing_purpose).event
    with later(hours=72):
        again = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, external_id="jd-1")
    assert not again.created and again.event == confirmation
    assert len(confirmation_mails()) == 1
    assert can_contact(mail_subscriber, brand, marketing_purpose, "email").allowed


def test_an_unanswered_request_is_asked_again_a_day_later(
    client, relayed, mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks
):
    with later(hours=25):
        again = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, external_id="jd-1")
    assert again.created and again.event.action == Action.REQUESTED
    old, new = confirmation_mails()
    assert client.post(link_path(old)).status_code == 409  # the newer mail's link replaces it
    assert client.post(link_path(new)).status_code == 200


def test_at_most_one_confirmation_mail_per_person_and_brand_a_day(
    relayed, newsletter, mail_subscriber, django_capture_on_commit_callbacks
):
    """A second purpose's request the same day is recorded but its mail held back; a
    grant after the day asks again, with a mail."""
    held = relay(mail_subscriber, newsletter, django_capture_on_commit_callbacks, external_id="news-1")
    assert held.created and held.event.action == Action.REQUESTED
    assert len(confirmation_mails()) == 1
    with later(hours=25):
        asked = relay(mail_subscriber, newsletter, django_capture_on_commit_callbacks, external_id="news-2")
    assert asked.created
    assert [m.to for m in confirmation_mails()] == [[mail_subscriber.email]] * 2


def test_a_held_back_mail_goes_out_once_the_day_is_over(
    client, relayed, newsletter, mail_subscriber, django_capture_on_commit_callbacks
):
    """The second purpose's mail, held back by the one-a-day limit, is not lost: the
    hourly beat sends it once a day has passed since the last one, once, and its link
    confirms the held request."""
    from consent import tasks

    held = relay(mail_subscriber, newsletter, django_capture_on_commit_callbacks, external_id="news-1")
    assert len(confirmation_mails()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_held_opt_in_mails() == 0  # within the day: still held
    assert len(confirmation_mails()) == 1

    with later(hours=25), django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_held_opt_in_mails() == 1
    first, second = confirmation_mails()
    assert second.to == [mail_subscriber.email] and "Newsletter" in second.body
    with later(hours=26), django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_held_opt_in_mails() == 0  # sent once, not every hour
    assert len(confirmation_mails()) == 2
    assert client.post(link_path(second)).status_code == 200
    assert email_state(mail_subscriber, newsletter).action == Action.CONFIRMED
    assert tokens.read_opt_in_token(link_path(second).rstrip("/").rsplit("/", 1)[1]) == held.event.pk


def test_opt_in_mail_false_holds_the_mail(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks):
    recorded = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, opt_in_mail=False)
    assert recorded.event.action == Action.REQUESTED
    assert confirmation_mails() == []


def test_a_withdrawal_then_a_grant_the_same_day_is_a_new_request_without_a_mail(
    relayed, mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    services.record_consent(member=mail_subscriber, brand=brand, purpose=marketing_purpose, channel="email",
                            action="withdrawn", source_type="store")  # fmt: skip
    again = relay(mail_subscriber, marketing_purpose, django_capture_on_commit_callbacks, external_id="tmall-2")
    assert again.created and email_state(mail_subscriber, marketing_purpose).event == again.event
    assert len(confirmation_mails()) == 1  # one a day; a grant after the day mails again


def test_a_batch_is_judged_as_one_event_after_the_other(brand, marketing_purpose, newsletter):
    """``record_consents`` (the API) and ``record_consent`` one by one (the row-by-row
    import) give the same events, answers and mails for the same sequence."""

    def sequence(people):
        a, b = people
        return [
            services.ConsentInput(member=a, purpose=marketing_purpose, channel="email", action="granted"),
            services.ConsentInput(member=a, purpose=marketing_purpose, channel="email", action="requested"),
            services.ConsentInput(member=a, purpose=newsletter, channel="email", action="granted"),
            services.ConsentInput(member=b, purpose=marketing_purpose, channel="email", action="confirmed",
                                  confirmation=PROOF),
            services.ConsentInput(member=b, purpose=marketing_purpose, channel="email", action="granted"),
            services.ConsentInput(member=a, purpose=marketing_purpose, channel="email", action="withdrawn"),
            services.ConsentInput(member=a, purpose=marketing_purpose, channel="email", action="granted"),
            services.ConsentInput(member=a, purpose=marketing_purpose, channel="sms", action="granted"),
        ]  # fmt: skip

    def outcome(results, people, queued):
        index = {p.pk: i for i, p in enumerate(people)}
        events = [(index[r.event.member_id], r.event.purpose.code, r.event.action, r.created) for r in results]
        mailed = [(index[e.member_id], e.purpose.code) for e in ConsentEvent.objects.filter(pk__in=queued)]
        states = sorted((index[s.member_id], s.purpose_id == newsletter.pk, s.channel, s.action)
                        for s in ConsentState.objects.filter(member__in=people))  # fmt: skip
        return events, mailed, states

    one_by_one = [MemberFactory(), MemberFactory()]
    with queued_mails() as queued:
        results = [
            services.record_consent(
                member=i.member, brand=brand, purpose=i.purpose, channel=i.channel, action=i.action,
                source_type="api_key", confirmation=i.confirmation,
            )
            for i in sequence(one_by_one)
        ]  # fmt: skip
    expected = outcome(results, one_by_one, queued)
    batched = [MemberFactory(), MemberFactory()]
    with queued_mails() as queued:
        results = services.record_consents(sequence(batched), brand=brand, source_type="api_key")
    assert outcome(results, batched, queued) == expected
    assert expected[0] == [
        (0, "marketing", "requested", True),
        (0, "marketing", "requested", False),  # the request of the day answers
        (0, "newsletter", "requested", True),  # recorded, its mail held back
        (1, "marketing", "confirmed", True),
        (1, "marketing", "confirmed", False),  # confirmed already
        (0, "marketing", "withdrawn", True),
        (0, "marketing", "requested", True),  # asked again, no second mail today
        (0, "marketing", "granted", True),
    ]
    assert expected[1] == [(0, "marketing")]


@contextlib.contextmanager
def queued_mails():
    """The ids of the requests whose confirmation mail is queued inside."""
    queued: list[int] = []

    def enqueue_on_commit(task, event_id):
        assert task == "consent.tasks.send_opt_in_email"
        queued.append(event_id)

    with mock.patch("consent.services.email_requests.enqueue_on_commit", enqueue_on_commit):
        yield queued


# --- The rule on its own (consent.validation): no database ------------------------------


def test_incoming_choice_is_the_rule():
    from consent.validation import incoming_choice

    def becomes(action, channel="email", source_type="store", confirmation=None):
        return incoming_choice(action=action, channel=channel, source_type=source_type, confirmation=confirmation)

    assert becomes("granted").action == "requested"
    assert becomes("requested").action == "requested"
    assert becomes("granted", confirmation=PROOF) == validation.Incoming("confirmed", PROOF_KEPT)
    assert becomes("confirmed", confirmation=PROOF) == validation.Incoming("confirmed", PROOF_KEPT)
    assert becomes("withdrawn").action == "withdrawn"
    assert becomes("granted", channel="sms").action == "granted"
    assert becomes("granted", source_type="privacy_center").action == "granted"  # through request_email_opt_in
    assert becomes("confirmed", source_type="double_opt_in").action == "confirmed"  # our link


def test_email_opt_ins_on_their_own():
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    opt_ins = validation.EmailOptIns(
        {
            (1, 10): validation.EmailState("confirmed", now - 48 * hour, now - 48 * hour, 501),
            (2, 10): validation.EmailState("requested", now - 2 * hour, now - 2 * hour, 502),
            (3, 10): validation.EmailState("requested", now - 30 * hour, now - 30 * hour, 503),
        },
        {2: now - 2 * hour, 3: now - 30 * hour},
        now=now,
    )

    def request(member_id, purpose_id=10, occurred_at=now):
        return opt_ins.request(member_id=member_id, purpose_id=purpose_id, occurred_at=occurred_at, event=member_id)

    assert request(1) == validation.OptIn(record=False, standing=501)
    assert request(2) == validation.OptIn(record=False, standing=502)
    assert request(3) == validation.OptIn(record=True, mail=True)
    assert request(3, purpose_id=11) == validation.OptIn(record=True, mail=False)  # one mail a day
    assert request(4) == validation.OptIn(record=True, mail=True)
    assert request(4) == validation.OptIn(record=False, standing=4)
    # An older event does not move the state (the projection's rule).
    opt_ins.recorded(member_id=4, purpose_id=10, action="withdrawn", occurred_at=now - hour, event=40)
    assert request(4) == validation.OptIn(record=False, standing=4)
    opt_ins.recorded(member_id=4, purpose_id=10, action="withdrawn", occurred_at=now, event=41)
    assert request(4) == validation.OptIn(record=True, mail=False)

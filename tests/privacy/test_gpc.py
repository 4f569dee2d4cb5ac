"""Global Privacy Control: a browser sending ``Sec-GPC: 1`` opts the signed-in person out
of sale and sharing where the brand honours it, once, with the header as evidence, and
the page says so; a grant of such a purpose asked for with the signal is refused."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from cdp.models import OutboxMessage
from consent import services
from consent.models import Action, ConsentEvent, ConsentState, SourceType
from tests.api.receiver import Receiver
from webhooks import services as webhook_services

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

GPC = {"HTTP_SEC_GPC": "1", "HTTP_USER_AGENT": "Mozilla/5.0 (GPC test browser)"}
BANNER = 'id="gpc-banner"'


@pytest.fixture
def sharing(purposes, brand):
    """The brand answers to GDPR (so it honours the signal by default); its third-party
    sharing purpose is flagged as sale or sharing."""
    brand.jurisdiction = "EU"
    brand.save(update_fields=["jurisdiction"])
    purpose = purposes["sharing"]
    purpose.is_sale_or_sharing = True
    purpose.save(update_fields=["is_sale_or_sharing"])
    return purpose


def grant(member, purpose, store):
    return services.record_consent(
        member=member, brand=purpose.brand, purpose=purpose, action=Action.GRANTED,
        source_type=SourceType.STORE, store=store,
    ).event  # fmt: skip


def state_of(member, purpose, channel=""):
    return ConsentState.objects.get(member_id=member.pk, purpose=purpose, channel=channel).action


@pytest.fixture
def shop(brand):
    """The brand's shop system: a real HTTP receiver of its consent changes."""
    with Receiver() as receiver:
        webhook_services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        webhook_services.forget_subscribers()
        yield receiver
    webhook_services.forget_subscribers()


def test_signal_withdraws_sharing_with_the_header_as_evidence_and_says_so(
    signed_in, shopper, sharing, tmall, purposes, shop, django_capture_on_commit_callbacks
):
    grant(shopper, sharing, tmall)

    with django_capture_on_commit_callbacks() as after_commit:
        response = signed_in.get("/privacy/", **GPC)

    assert response.status_code == 200
    page = response.content.decode()
    assert BANNER in page and 'href="/privacy/history/"' in page
    assert "莲花美妆" in page[page.index(BANNER) :]
    assert state_of(shopper, sharing) == Action.WITHDRAWN
    assert state_of(shopper, purposes["marketing"], "sms") == Action.GRANTED  # not sale or sharing
    event = ConsentEvent.objects.filter(member_id=shopper.pk).latest("pk")
    assert (event.action, event.source_type, event.purpose_id) == (Action.WITHDRAWN, SourceType.GPC, sharing.pk)
    assert event.evidence["header"] == "Sec-GPC" and event.evidence["value"] == "1"
    assert event.evidence["user_agent"] == "Mozilla/5.0 (GPC test browser)"
    assert event.evidence["received_at"].startswith(str(event.recorded_at.date()))
    webhook_rows = [
        m for m in OutboxMessage.objects.filter(task="webhooks.tasks.publish_event") if m.args[1:2] == [event.pk]
    ]
    assert len(webhook_rows) == 1 and webhook_rows[0].args[0] == "consent.changed"
    # … and, once it has committed, the shop system receives the withdrawal with its source.
    with django_capture_on_commit_callbacks(execute=True):  # and what those callbacks defer
        for callback in after_commit:
            callback()
    (delivered,) = [p for p in shop.payloads() if p["data"]["event"]["source"] == SourceType.GPC]
    assert delivered["type"] == "consent.changed" and delivered["member"] == shopper.pk
    assert delivered["data"]["event"]["action"] == "withdrawn" and delivered["data"]["state"]["action"] == "withdrawn"

    history = signed_in.get("/privacy/history/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Global Privacy Control" in history  # the source, in the person's history


def test_a_second_page_view_records_nothing_new(signed_in, shopper, sharing, tmall, subscriber):
    grant(shopper, sharing, tmall)
    signed_in.get("/privacy/consents/", **GPC)
    events, outbox = ConsentEvent.objects.count(), OutboxMessage.objects.count()

    for path in ("/privacy/", "/privacy/consents/", "/privacy/history/"):
        response = signed_in.get(path, **GPC)
        assert response.status_code == 200 and BANNER in response.content.decode()

    assert (ConsentEvent.objects.count(), OutboxMessage.objects.count()) == (events, outbox)
    assert state_of(shopper, sharing) == Action.WITHDRAWN


def test_a_page_with_the_signal_and_nothing_to_withdraw_costs_two_reads(
    signed_in, shopper, sharing, django_assert_max_num_queries
):
    baseline_response = signed_in.get("/privacy/consents/")
    assert BANNER not in baseline_response.content.decode()
    with CaptureQueriesContext(connection) as without:
        signed_in.get("/privacy/consents/")
    with django_assert_max_num_queries(len(without) + 2):
        response = signed_in.get("/privacy/consents/", **GPC)
    assert BANNER in response.content.decode()


def test_without_the_signal_nothing_changes(signed_in, shopper, sharing, tmall):
    grant(shopper, sharing, tmall)
    for value in (None, "0", "true"):
        headers = {"HTTP_SEC_GPC": value} if value else {}
        response = signed_in.get("/privacy/", **headers)
        assert BANNER not in response.content.decode()
    assert state_of(shopper, sharing) == Action.GRANTED
    assert not ConsentEvent.objects.filter(source_type=SourceType.GPC).exists()


@pytest.mark.parametrize(
    ("jurisdiction", "honour_gpc", "honoured"),
    [
        ("CN", None, False),  # PIPL names no such signal: off unless the brand says so
        ("RU", None, False),
        ("EU", None, True),  # GDPR Art. 21(5)
        ("EU", False, False),  # the brand's own choice wins
        ("CN", True, True),
    ],
)
def test_the_brand_decides_as_its_jurisdiction_says_unless_it_chose(
    signed_in, shopper, sharing, tmall, brand, jurisdiction, honour_gpc, honoured
):
    brand.jurisdiction, brand.honour_gpc = jurisdiction, honour_gpc
    brand.save(update_fields=["jurisdiction", "honour_gpc"])
    grant(shopper, sharing, tmall)

    page = signed_in.get("/privacy/", **GPC).content.decode()

    assert (BANNER in page) is honoured
    assert state_of(shopper, sharing) == (Action.WITHDRAWN if honoured else Action.GRANTED)


@override_settings(GPC_JURISDICTIONS=["CN", "EU"])
def test_the_jurisdictions_are_a_setting(signed_in, shopper, sharing, tmall, brand):
    brand.jurisdiction = "CN"
    brand.save(update_fields=["jurisdiction"])
    grant(shopper, sharing, tmall)
    signed_in.get("/privacy/", **GPC)
    assert state_of(shopper, sharing) == Action.WITHDRAWN


def test_only_the_signed_in_person_is_opted_out(signed_in, shopper, other_shopper, sharing, tmall, jd):
    grant(shopper, sharing, tmall)
    grant(other_shopper, sharing, jd)

    signed_in.get("/privacy/", **GPC)

    assert state_of(shopper, sharing) == Action.WITHDRAWN
    assert state_of(other_shopper, sharing) == Action.GRANTED
    assert not ConsentEvent.objects.filter(member_id=other_shopper.pk, source_type=SourceType.GPC).exists()


def test_a_grant_with_the_signal_is_refused_with_a_reason(signed_in, shopper, sharing):
    data = {"purpose": sharing.pk, "channel": "", "value": "on"}

    response = signed_in.post("/privacy/consents/set/", data, follow=True, HTTP_ACCEPT_LANGUAGE="en", **GPC)

    assert response.status_code == 200
    assert "Global Privacy Control" in response.content.decode()
    assert not ConsentEvent.objects.filter(member_id=shopper.pk, purpose=sharing, action=Action.GRANTED).exists()

    scripted = signed_in.post(
        "/privacy/consents/set/", data, HTTP_X_REQUESTED_WITH="fetch", HTTP_ACCEPT_LANGUAGE="en", **GPC
    )
    assert scripted.status_code == 409 and "Global Privacy Control" in scripted.json()["error"]

    # Without the signal the person's own click grants it, and GPC does not withdraw it
    # again until the browser sends the signal.
    assert signed_in.post("/privacy/consents/set/", data).status_code == 302
    assert state_of(shopper, sharing) == Action.GRANTED


def test_other_purposes_are_granted_with_the_signal(signed_in, shopper, sharing, purposes):
    data = {"purpose": purposes["marketing"].pk, "channel": "sms", "value": "on"}
    services.record_consent(
        member=shopper, brand=sharing.brand, purpose=purposes["marketing"], channel="sms",
        action=Action.WITHDRAWN, source_type=SourceType.PRIVACY_CENTER,
    )  # fmt: skip
    assert signed_in.post("/privacy/consents/set/", data, **GPC).status_code == 302
    assert state_of(shopper, purposes["marketing"], "sms") == Action.GRANTED

"""Consent receipts (Kantara Consent Receipt v1.1): every field, stable unguessable ids,
mailed only when the person acted directly, and shown to staff from the ledger."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from django.conf import settings
from django.contrib import admin
from django.core import mail
from django.urls import include, path, reverse
from django.utils import translation

from consent import receipts, services
from consent.models import Notice, Purpose
from consent.receipts import receipt_urls
from tests.factories import MemberFactory


@pytest.fixture(autouse=True)
def _english(english):
    """These tests read the English wording; test_translations.py covers the others."""


# The admin with the receipt views mounted the way ConsentEventAdmin.get_urls mounts them,
# so these tests do not depend on that integration being in place.
_admin_patterns, _admin_app, _admin_namespace = admin.site.urls
urlpatterns = [
    path(
        "admin/",
        include(
            ([path("consent/consentevent/", include(receipt_urls(admin.site))), *_admin_patterns], _admin_app),
            namespace=_admin_namespace,
        ),
    ),
    path("privacy/", include("consent.urls")),
]

KANTARA_KEYS = {
    "version",
    "jurisdiction",
    "consentTimestamp",
    "collectionMethod",
    "consentReceiptID",
    "language",
    "piiPrincipalId",
    "piiControllers",
    "policyUrl",
    "services",
    "sensitive",
    "spiCat",
}
PURPOSE_KEYS = {
    "purpose",
    "purposeCategory",
    "consentType",
    "piiCategory",
    "primaryPurpose",
    "termination",
    "thirdPartyDisclosure",
}


@pytest.fixture(autouse=True)
def _receipts(consent_receipts):
    """Receipts on, as ``ConsentConfig.ready()`` turns them on."""


def record(member, brand, purpose, *, capture=None, **kwargs):
    fields = {"channel": "sms", "action": "granted", "source_type": "privacy_center", **kwargs}
    if capture is None:
        return services.record_consent(member=member, brand=brand, purpose=purpose, **fields).event
    with capture(execute=True):
        return services.record_consent(member=member, brand=brand, purpose=purpose, **fields).event


@pytest.fixture
def granted(mail_subscriber, brand, marketing_purpose, tmall):
    brand.legal_name = "莲花美妆（上海）有限公司"
    brand.privacy_email = "privacy@lotus.example.com"
    brand.address = "上海市静安区南京西路 1 号"
    brand.save()
    return receipts.load_event(record(mail_subscriber, brand, marketing_purpose, source_type="store", store=tmall).pk)


# --- The receipt -------------------------------------------------------------------------


def test_receipt_has_every_kantara_field(granted):
    receipt = receipts.receipt_for(granted)
    assert set(receipt) >= KANTARA_KEYS
    assert "publicKey" not in receipt
    (service,) = receipt["services"]
    assert set(service) == {"service", "purposes"}
    (purpose,) = service["purposes"]
    assert set(purpose) >= PURPOSE_KEYS
    (controller,) = receipt["piiControllers"]
    assert set(controller) >= {"piiController", "contact", "address", "email", "phone"}
    json.dumps(receipt)  # JSON-ready as it is


def test_receipt_values(granted, mail_subscriber, brand, marketing_purpose):
    receipt = receipts.receipt_for(granted)
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["jurisdiction"] == "CN"
    assert receipt["consentTimestamp"] == int(granted.occurred_at.timestamp())
    assert receipt["collectionMethod"] == "在莲花天猫旗舰店"  # in the words of the receipt's language
    assert receipt["language"] == "zh-hans"
    assert receipt["piiPrincipalId"] == f"member-{mail_subscriber.pk}"
    assert mail_subscriber.phone not in json.dumps(receipt, ensure_ascii=False)
    assert mail_subscriber.email not in json.dumps(receipt, ensure_ascii=False)
    assert receipt["piiControllers"] == [
        {
            "piiController": "莲花美妆（上海）有限公司",
            "contact": "莲花美妆",
            "address": "上海市静安区南京西路 1 号",
            "email": "privacy@lotus.example.com",
            "phone": "",
        }
    ]
    assert receipt["policyUrl"] == f"{settings.SITE_URL}/privacy/notices/{granted.notice_id}/"
    assert receipt["services"] == [
        {
            "service": "莲花美妆",
            "purposes": [
                {
                    "purpose": "营销信息",
                    "purposeCategory": ["marketing"],
                    "consentType": "EXPLICIT",
                    "piiCategory": ["sms"],
                    "primaryPurpose": True,
                    "termination": "until withdrawn",
                    "thirdPartyDisclosure": False,
                    "action": "granted",
                    "channel": "sms",
                }
            ],
        }
    ]
    assert receipt["sensitive"] is False
    assert receipt["spiCat"] == []
    assert receipt["evidence"] == {
        "notice": {"id": granted.notice.pk, "version": 1, "sha256": granted.notice.sha256},
        "eventHash": granted.hash,
        "sequence": granted.seq,
    }


def test_receipt_id_is_stable_and_derived_from_the_hash(granted):
    first = receipts.receipt_for(granted)["consentReceiptID"]
    assert first == receipts.receipt_for(receipts.load_event(granted.pk))["consentReceiptID"]
    assert uuid.UUID(first).hex == granted.hash[:32]


def test_separate_consent_purposes(mail_subscriber, brand):
    sharing = Purpose.objects.create(
        brand=brand, code="third_party_sharing", name="向第三方提供", separate_consent=True
    )
    services.publish_notice(
        brand=brand, kind="purpose_notice", purpose=sharing, locale="zh-hans", title="告知", body="t"
    )
    event = receipts.load_event(record(mail_subscriber, brand, sharing, channel="").pk)
    receipt = receipts.receipt_for(event)
    (purpose,) = receipt["services"][0]["purposes"]
    assert receipt["sensitive"] is True
    assert purpose["primaryPurpose"] is False
    assert purpose["thirdPartyDisclosure"] is True
    assert purpose["piiCategory"] == ["profile"]


def test_policy_url_is_the_notices_public_url_when_it_has_one(mail_subscriber, brand, marketing_purpose):
    services.publish_notice(
        brand=brand,
        kind=Notice.Kind.PURPOSE_NOTICE,
        purpose=marketing_purpose,
        locale="zh-hans",
        title="营销告知",
        body="v2",
        url="https://lotus.example.com/privacy/marketing-v2",
    )
    event = receipts.load_event(record(mail_subscriber, brand, marketing_purpose).pk)
    assert receipts.receipt_for(event)["policyUrl"] == "https://lotus.example.com/privacy/marketing-v2"


def test_notice_page_shows_the_text_and_its_hash(client, granted, django_assert_max_num_queries):
    # One query for the notice, one for the same notice in the brand's other languages.
    with django_assert_max_num_queries(2):
        response = client.get(f"/privacy/notices/{granted.notice_id}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert granted.notice.title in page
    assert granted.notice.sha256 in page
    assert 'href="/privacy/"' in page  # a way back to the privacy center


def test_html_receipt_is_readable(granted):
    html = receipts.render_receipt_html(granted)
    receipt = receipts.receipt_for(granted)
    for text in ("营销信息", "莲花美妆（上海）有限公司", receipt["consentReceiptID"], granted.notice.sha256, "SMS"):
        assert text in html


# --- Mailing -----------------------------------------------------------------------------


def receipt_mails():
    return [m for m in mail.outbox if any(a[0].startswith("consent-receipt-") for a in m.attachments)]


def test_receipt_mail_has_html_and_the_json_file(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    event = record(mail_subscriber, brand, marketing_purpose, capture=django_capture_on_commit_callbacks)
    (message,) = receipt_mails()
    assert message.to == [mail_subscriber.email]
    assert brand.name in message.subject
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    ((name, content, content_type),) = message.attachments
    assert name == f"consent-receipt-{event.pk}.json"
    assert content_type == "application/json"
    with translation.override(mail_subscriber.locale):  # mails speak the member's language
        expected = receipts.receipt_for(receipts.load_event(event.pk))
    assert json.loads(content) == expected
    assert json.loads(content)["consentReceiptID"] in html
    # Withdrawing is one link away, in the receipt of the grant itself.
    assert re.search(r"/privacy/unsubscribe/[^/\s\"]+/", html)
    assert "/privacy/unsubscribe/" in message.body


@pytest.mark.parametrize(
    ("source", "action", "channel"),
    [
        ("privacy_center", "granted", "sms"),
        ("privacy_center", "withdrawn", "sms"),
        ("unsubscribe_link", "withdrawn", "email"),
        ("sms_keyword", "withdrawn", "sms"),
        ("double_opt_in", "confirmed", "email"),
    ],
)
def test_mailed_when_the_person_acted(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks, source, action, channel
):
    if action == "confirmed":
        record(mail_subscriber, brand, marketing_purpose, channel="email", action="requested", source_type="store")
    record(
        mail_subscriber,
        brand,
        marketing_purpose,
        capture=django_capture_on_commit_callbacks,
        source_type=source,
        action=action,
        channel=channel,
    )
    assert len(receipt_mails()) == 1


@pytest.mark.parametrize("source", ["store", "import_job", "api_key", "admin_user", "system"])
def test_not_mailed_for_bulk_and_system_sources(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks, source
):
    record(mail_subscriber, brand, marketing_purpose, capture=django_capture_on_commit_callbacks, source_type=source)
    assert mail.outbox == []


def test_not_mailed_for_a_pending_request(
    mail_subscriber, brand, marketing_purpose, django_capture_on_commit_callbacks
):
    record(
        mail_subscriber,
        brand,
        marketing_purpose,
        capture=django_capture_on_commit_callbacks,
        channel="email",
        action="requested",
    )
    assert receipt_mails() == []


def test_not_mailed_without_an_email_address(brand, marketing_purpose, django_capture_on_commit_callbacks):
    member = MemberFactory(email="")
    record(member, brand, marketing_purpose, capture=django_capture_on_commit_callbacks)
    assert mail.outbox == []


def test_receipt_time_is_when_the_person_acted(mail_subscriber, brand, marketing_purpose):
    when = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
    event = receipts.load_event(record(mail_subscriber, brand, marketing_purpose, occurred_at=when).pk)
    assert receipts.receipt_for(event)["consentTimestamp"] == 1709294400


# --- Admin -------------------------------------------------------------------------------

admin_urls = pytest.mark.urls(__name__)


@admin_urls
def test_staff_see_the_receipt(client, consent_clerk, granted, django_assert_max_num_queries):
    client.force_login(consent_clerk)
    url = reverse("admin:consent_consentevent_receipt", args=[granted.pk])
    with django_assert_max_num_queries(8):  # 6, and where it was passed on to (receivers, files)
        response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert receipts.receipt_for(granted)["consentReceiptID"] in page
    assert reverse("admin:consent_consentevent_receipt_json", args=[granted.pk]) in page
    assert "/privacy/unsubscribe/" not in page  # staff must not act as the person


@admin_urls
def test_staff_download_the_json(client, consent_clerk, granted):
    client.force_login(consent_clerk)
    response = client.get(reverse("admin:consent_consentevent_receipt_json", args=[granted.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="consent-receipt-{granted.pk}.json"'
    assert json.loads(response.content) == receipts.receipt_for(granted)


@admin_urls
def test_staff_without_ledger_access_are_refused(client, marketer, granted):
    client.force_login(marketer)
    for name in ("admin:consent_consentevent_receipt", "admin:consent_consentevent_receipt_json"):
        assert client.get(reverse(name, args=[granted.pk])).status_code == 403


@admin_urls
def test_anonymous_are_sent_to_login(client, granted):
    response = client.get(reverse("admin:consent_consentevent_receipt", args=[granted.pk]))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@admin_urls
def test_unknown_event_is_404(client, consent_clerk):
    client.force_login(consent_clerk)
    assert client.get(reverse("admin:consent_consentevent_receipt", args=[999999])).status_code == 404

"""Consent fixtures shared by the consent, privacy, import and report tests. Several features add fixtures here:
add new ones, do not change existing ones."""

from __future__ import annotations

import pytest
from django.utils import translation

from consent import services
from consent.models import Notice, Purpose
from tests.conftest import MEMBER_PERMS, _staff_with

CONSENT_VIEW_PERMS = [
    "view_purpose",
    "view_notice",
    "view_consentevent",
    "view_consentstate",
    "view_checkpoint",
    "view_ledgerverification",
    "view_preference",
    "view_datausage",
    "view_suppression",
]


@pytest.fixture
def marketing_purpose(brand):
    """The brand's marketing purpose (SMS and e-mail) with a published notice v1."""
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="营销信息", channels=["sms", "email"], is_marketing=True
    )
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="营销告知", body="v1"
    )
    return purpose


@pytest.fixture
def consent_officer(db):
    """A privacy officer for consent: sees the ledger, reports and full contact points,
    publishes notices and keeps the suppression list."""
    return _staff_with(
        "consent-officer",
        [
            *MEMBER_PERMS,
            "view_pii",
            "view_auditlog",
            *CONSENT_VIEW_PERMS,
            "add_notice",
            "add_purpose",
            "change_purpose",
            "add_suppression",
            "delete_suppression",
        ],
    )


@pytest.fixture
def consent_clerk(db):
    """Staff who may read the consent admin but not see contact points or evidence values."""
    return _staff_with("consent-clerk", [*MEMBER_PERMS, *CONSENT_VIEW_PERMS])


# --- Mail links, SMS replies and receipts (double opt-in, unsubscribe, receipts) ---------


@pytest.fixture
def mail_subscriber(brand):
    """A member of the brand with an e-mail address and a phone identity, language zh-hans."""
    from members.models import Identity
    from tests.factories import MemberFactory

    member = MemberFactory(locale="zh-hans")
    Identity.objects.create(member=member, kind="phone", value=member.phone)
    Identity.objects.create(member=member, kind="email", value=member.email)
    return member


@pytest.fixture
def consent_receipts():
    """Receipt mails on, as ``ConsentConfig.ready()`` turns them on (``consent.receivers``).
    Turned off again afterwards only if this fixture was what turned them on."""
    from consent import receivers as consent_receivers
    from consent import signals as consent_signals

    def connected() -> bool:
        return any(key[0] == "consent.mail.receipts" for key, *_ in consent_signals.consent_changed.receivers)

    already = connected()
    consent_receivers.connect_receipts()
    yield
    if not already:
        consent_signals.consent_changed.disconnect(dispatch_uid="consent.mail.receipts")


# --- Language of pages under test ------------------------------------------------------


def member_language(text: str, language: str = "zh-hans") -> str:
    """Pages after a person's choice speak the member's language (``mail_subscriber``'s is zh-hans)."""
    with translation.override(language):
        return translation.gettext(text)


@pytest.fixture
def english(client):
    """For tests that read the English wording; test_translations.py covers the others."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def compliance_officer(consent_officer):
    """The consent officer, also allowed to read and download the compliance report."""
    from django.contrib.auth.models import Permission

    consent_officer.user_permissions.add(Permission.objects.get(codename="view_compliance_report"))
    return type(consent_officer).objects.get(pk=consent_officer.pk)

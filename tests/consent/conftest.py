"""Consent fixtures shared by the consent tests. Several features add fixtures here:
add new ones, do not change existing ones."""

from __future__ import annotations

import pytest

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

"""Did every receiver get the withdrawal? (issue 25 item 10): per withdrawal, each webhook
receiver's state (received, on its way, failed) and each consent file feed's; the privacy
officer's list of withdrawals not yet received everywhere; the person's receipt says where
their choice went."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from consent import services as consent_services
from webhooks import propagation, services, tasks
from webhooks.models import ConsentFileFeed, Delivery

from .receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receivers(brand):
    """Two receivers of ``brand``'s consent changes: the shop system (always answers 200)
    and the CRM (down: answers 500 until a test scripts otherwise)."""
    with Receiver() as shop, Receiver() as crm:
        services.create_subscription(brand=brand, url=shop.url, events=["consent.changed"], description="Shop system")
        services.create_subscription(brand=brand, url=crm.url, events=["consent.changed"], description="CRM")
        crm.script = [500] * 20
        services.forget_subscribers()
        yield shop, crm
    services.forget_subscribers()


def _record(member, purpose, action, capture):
    with capture(execute=True):
        return consent_services.record_consent(member=member, brand=purpose.brand, purpose=purpose, channel="sms",
                                               action=action, source_type="privacy_center").event  # fmt: skip


def test_each_receiver_says_whether_it_got_the_withdrawal(
    receivers, alice, marketing, django_capture_on_commit_callbacks, client, superuser
):
    shop, crm = receivers
    _record(alice, marketing, "granted", django_capture_on_commit_callbacks)
    withdrawal = _record(alice, marketing, "withdrawn", django_capture_on_commit_callbacks)
    ConsentFileFeed.objects.create(brand=marketing.brand, name="Partner file", secret="s",
                                   created_at=withdrawal.recorded_at - dt.timedelta(days=1))  # fmt: skip

    rows = {row.receiver: row.state for row in propagation.receipt_rows(withdrawal)}
    assert rows == {"Shop system": "acknowledged", "CRM": "on_its_way", "Partner file": "next_file"}

    # The privacy officer's list names the withdrawal and the CRM that has not confirmed it.
    client.force_login(superuser)
    page = client.get(reverse("admin:webhooks_delivery_withdrawals"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert reverse("admin:consent_consentevent_change", args=[withdrawal.pk]) in page
    assert "<strong>CRM: on its way</strong>" in page and "Shop system: received" in page
    # The receipt (the admin's here; the person's is the same page) says where it went.
    receipt = client.get(reverse("admin:consent_consentevent_receipt", args=[withdrawal.pk]),
                         HTTP_ACCEPT_LANGUAGE="en").content.decode()  # fmt: skip
    assert "Passed on to" in receipt and "CRM: on its way" in receipt

    # The CRM comes back: the retry is delivered, and the list empties.
    crm.script = []
    Delivery.objects.filter(status="retrying").update(next_attempt_at=timezone.now() - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.retry_due()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.retry_due()  # the withdrawal waited behind the grant's retry (per-member order)
    ConsentFileFeed.objects.all().delete()
    assert {row.receiver: row.state for row in propagation.receipt_rows(withdrawal)} == {
        "Shop system": "acknowledged", "CRM": "acknowledged",
    }  # fmt: skip
    assert propagation.unconfirmed_withdrawals(brand_ids=None) == []
    assert (
        "reached every receiver"
        in client.get(reverse("admin:webhooks_delivery_withdrawals"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )


def test_the_person_sees_where_their_withdrawal_went(receivers, alice, marketing, django_capture_on_commit_callbacks):
    from privacy.models import PrivacyAccount
    from tests.factories import UserFactory

    _record(alice, marketing, "granted", django_capture_on_commit_callbacks)
    withdrawal = _record(alice, marketing, "withdrawn", django_capture_on_commit_callbacks)
    user = UserFactory(username="alice-shopper")
    PrivacyAccount.objects.create(user=user, member=alice)
    from django.test import Client

    person = Client(HTTP_ACCEPT_LANGUAGE="en")
    person.force_login(user)
    page = person.get(reverse("privacy:receipt", args=[withdrawal.pk]))
    assert page.status_code == 200
    assert "Shop system: received" in page.content.decode()


def test_a_mailed_receipt_does_not_claim_anything_was_passed_on(receivers, alice, marketing):
    from consent import receipts

    granted = consent_services.record_consent(member=alice, brand=marketing.brand, purpose=marketing, channel="sms",
                                              action="granted", source_type="privacy_center").event  # fmt: skip
    assert "Passed on to" not in receipts.render_receipt_html(granted)


def test_the_officer_list_needs_the_ledger_permission_and_stays_in_the_staffs_brands(
    client, marketer, receivers, alice, marketing, other_brand, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    client.force_login(marketer)
    assert client.get(reverse("admin:webhooks_delivery_withdrawals")).status_code == 403
    _record(alice, marketing, "granted", django_capture_on_commit_callbacks)
    _record(alice, marketing, "withdrawn", django_capture_on_commit_callbacks)
    other = UserFactory(username="other-officer", is_staff=True)
    other.user_permissions.set(Permission.objects.filter(codename="view_consentevent"))
    other_brand.staff.add(other)
    client.force_login(other)
    page = client.get(reverse("admin:webhooks_delivery_withdrawals"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "reached every receiver" in page  # brand A's pending withdrawal is not theirs to see
    assert len(propagation.unconfirmed_withdrawals(brand_ids=None)) == 1

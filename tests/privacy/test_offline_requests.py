"""Requests that come by phone, letter, at a store counter or by e-mail are recorded by the
privacy officer through the same services as the privacy center (issue 25 item 8)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent import services as consent_services
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from privacy.models import DataSubjectRequest
from tests.factories import BrandFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

OFFLINE = reverse("admin:privacy_datasubjectrequest_offline")


@pytest.fixture
def officer(lotus_officer):
    return lotus_officer


@pytest.fixture
def person(lotus_shopper):
    return lotus_shopper


def _post(client, person_ref, kind, via="letter", days_ago=3, details=""):
    received = timezone.localtime() - dt.timedelta(days=days_ago)
    return client.post(OFFLINE, {"person": person_ref, "kind": kind, "via": via, "details": details,
                                 "received_at": received.strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip


def test_a_letter_asking_for_a_copy_waits_in_the_queue_with_its_deadline_from_the_letter(client, officer, person):
    response = _post(client, "138 0013 8000", "access", via="letter", days_ago=3)

    made = DataSubjectRequest.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{made.pk}/change/")
    assert (made.kind, made.status, made.received_via) == ("access", "received", "letter")
    assert (timezone.now() - made.received_at).days == 3
    assert made.due_at < timezone.now() + dt.timedelta(days=15)  # counted from the letter, not today
    assert AuditLog.objects.filter(action="privacy.offline_request", actor_user=officer).exists()
    page = client.get(reverse("admin:privacy_datasubjectrequest_change", args=[made.pk])).content.decode()
    assert "Letter" in page


def test_a_call_withdrawing_everything_withdraws_through_the_ledger_at_once(client, officer, person, brand, tmall):
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    consent_services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                                    title="营销", body="v1", published_at=timezone.now() - dt.timedelta(days=30))  # fmt: skip
    consent_services.record_consent(member=person, brand=brand, purpose=purpose, channel="sms", action="granted",
                                    source_type="store", occurred_at=timezone.now() - dt.timedelta(days=10))  # fmt: skip

    _post(client, str(person.pk), "withdraw_all", via="phone", days_ago=1)

    made = DataSubjectRequest.objects.get()
    assert (made.status, made.received_via, made.outcome) == ("completed", "phone", {"withdrawn": 1})
    assert ConsentState.objects.get(member=person, purpose=purpose).action == "withdrawn"
    withdrawal = ConsentEvent.objects.get(action="withdrawn")
    assert withdrawal.source_type == "admin_user" and withdrawal.evidence["received_via"] == "phone"
    assert (timezone.now() - withdrawal.occurred_at).days == 1  # when the person asked


def test_a_deletion_at_a_store_counter_starts_the_erasure(client, officer, person, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, str(person.pk), "deletion", via="store_counter", days_ago=0)
    made = DataSubjectRequest.objects.get()
    person.refresh_from_db()
    assert made.received_via == "store_counter" and made.status == "completed"
    assert person.status == "erased"


def test_bad_input_is_shown_on_the_form_and_records_nothing(client, officer, person):
    no_details = _post(client, str(person.pk), "correction")
    unknown = _post(client, "13900000000", "access")
    future = _post(client, str(person.pk), "access", days_ago=-2)

    assert no_details.status_code == unknown.status_code == future.status_code == 400
    assert "what is wrong" in no_details.content.decode()
    assert "person" in unknown.context["form"].errors
    assert "future" in future.content.decode()
    assert not DataSubjectRequest.objects.exists()


def test_staff_of_another_brand_cannot_record_for_this_person(client, person):
    other = BrandFactory(code="rose")
    StoreFactory(brand=other, code="rose-jd", platform="jd")
    staff = UserFactory(username="officer-rose", is_staff=True)
    staff.groups.add(Group.objects.get(name="Privacy officer"))
    other.staff.add(staff)
    client.force_login(staff)
    response = _post(client, str(person.pk), "access")
    assert response.status_code == 400 and "person" in response.context["form"].errors
    client.force_login(UserFactory(username="nobody", is_staff=True))
    assert client.get(OFFLINE).status_code == 403

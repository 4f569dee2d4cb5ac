"""My data: the zip copy, deletion (the Celery task), and that nobody reaches another
person's rows by guessing ids."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core import mail
from django.core.management import call_command

from consent.models import Action, ConsentEvent, ConsentState
from members.identities import ErasedPerson, StoreRecord, erased_value
from members.models import Identity, Member
from members.services import resolve_store_record
from privacy import rights
from privacy.models import DataSubjectRequest, PrivacyAccount
from privacy.tasks import erase_member_data
from tests.factories import OrderFactory

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content))


def test_download_everything_as_json_and_csv(signed_in, shopper, django_assert_max_num_queries):
    response = signed_in.post("/privacy/data/export/")
    assert response.status_code == 302
    request = DataSubjectRequest.objects.get(member=shopper, kind="access")
    assert response["Location"] == f"/privacy/data/requests/{request.pk}/download/"
    with django_assert_max_num_queries(16):
        download = signed_in.get(response["Location"])
    assert download["Content-Type"] == "application/zip"
    archive = _zip(download)
    names = set(archive.namelist())
    assert {"data.json", "profile.csv", "orders.csv", "consent_events.csv", "data_usage.csv", "README.txt"} <= names
    data = json.loads(archive.read("data.json"))
    assert data["profile"]["name"] == "王小花"
    assert len(data["orders"]) == 3
    assert data["consent_events"][0]["action"] == "granted"
    assert data["memberships"][0]["tier"] == "金卡"
    orders_csv = archive.read("orders.csv").decode("utf-8-sig")
    assert orders_csv.splitlines()[0].startswith("store,order_id,amount")
    assert request.status == "completed"


def test_guessing_other_peoples_ids_finds_nothing(signed_in, shopper, other_shopper):
    other_event = ConsentEvent.objects.filter(member=other_shopper).first()
    other_request = rights.record_access_request(member=other_shopper, account=None)
    other_correction = rights.request_correction(member=other_shopper, account=None, details="x")
    for path in [
        f"/privacy/history/{other_event.pk}/receipt/",
        f"/privacy/history/{other_event.pk}/receipt.json",
        f"/privacy/data/requests/{other_request.pk}/download/",
        f"/privacy/data/requests/{other_correction.pk}/download/",
        "/privacy/data/requests/999999/download/",
    ]:
        assert signed_in.get(path).status_code == 404, path
    # Another member's purpose of another brand cannot be switched either.
    jd_purpose = other_event.purpose
    if jd_purpose.brand_id != shopper.memberships.get().store.brand_id:
        assert (
            signed_in.post(
                "/privacy/consents/set/", {"purpose": jd_purpose.pk, "channel": "sms", "value": "off"}
            ).status_code
            == 404
        )


def test_deletion_needs_the_confirmation_tick(signed_in, shopper):
    response = signed_in.post("/privacy/data/delete/", {})
    assert response.status_code == 400
    assert not DataSubjectRequest.objects.filter(kind="deletion").exists()


def test_deletion_erases_keeps_the_ledger_and_mails_a_final_receipt(
    signed_in, account, shopper, tmall, purposes, django_capture_on_commit_callbacks
):
    events_before = ConsentEvent.objects.filter(member=shopper).count()
    with django_capture_on_commit_callbacks(execute=True):  # the task, then its final mail
        response = signed_in.post("/privacy/data/delete/", {"confirm": "on"})
    assert response.status_code == 200
    assert "#" in response.content.decode()
    request = DataSubjectRequest.objects.get(member=shopper, kind="deletion")
    assert request.status == "completed", request.outcome
    shopper.refresh_from_db()
    assert shopper.status == Member.Status.ERASED
    assert (shopper.name, shopper.phone, shopper.email, shopper.city, shopper.birth_date) == ("", "", "", "", None)
    values = set(Identity.objects.filter(member=shopper).values_list("value", flat=True))
    assert values == {erased_value("phone", "+8613800138000"), erased_value("email", "xiaohua@example.com"),
                      erased_value("store_member", f"{tmall.pk}:T1")}  # fmt: skip
    assert "+8613800138000" not in str(values)
    # The ledger is kept, and every consent now ends in a withdrawal recorded through it.
    assert ConsentEvent.objects.filter(member=shopper).count() == events_before + 1
    assert set(ConsentState.objects.filter(member=shopper).values_list("action", flat=True)) == {Action.WITHDRAWN}
    call_command("verify_consent_ledger")
    # The account is closed and signed out.
    account.refresh_from_db()
    assert account.closed_at is not None and not account.user.is_active
    assert signed_in.get("/privacy/").status_code == 302
    assert any(m.subject and m.to == ["xiaohua@example.com"] and f"#{request.pk}" in m.body for m in mail.outbox)


def test_erasure_task_is_idempotent(shopper, django_capture_on_commit_callbacks):
    request = DataSubjectRequest.objects.create(member=shopper, kind="deletion")
    with django_capture_on_commit_callbacks(execute=True):
        assert erase_member_data(request.pk) is True
    events = ConsentEvent.objects.count()
    sent = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        assert erase_member_data(request.pk) is False
    assert ConsentEvent.objects.count() == events
    assert len(mail.outbox) == sent


def test_reimport_of_an_erased_phone_is_refused_not_recreated(shopper, tmall, jd):
    request = DataSubjectRequest.objects.create(member=shopper, kind="deletion")
    rights.carry_out_deletion(request.pk)
    members = Member.objects.count()
    with pytest.raises(ErasedPerson) as caught:
        resolve_store_record(StoreRecord.clean(store=jd, store_member_id="NEW1", phone="138-0013-8000"))
    assert caught.value.field == "phone"
    assert Member.objects.count() == members
    # Somebody else's number still goes in.
    resolve_store_record(StoreRecord.clean(store=jd, store_member_id="NEW2", phone="13700137000"))
    assert Member.objects.count() == members + 1


def test_a_second_deletion_request_returns_the_open_one(shopper, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    first = rights.request_deletion(member=shopper, account=None)  # on_commit never runs here
    assert rights.request_deletion(member=shopper, account=None) == first


def test_large_member_export_is_complete(signed_in, shopper, tmall):
    OrderFactory.create_batch(40, store=tmall, member=shopper)
    response = signed_in.get(signed_in.post("/privacy/data/export/")["Location"])
    data = json.loads(_zip(response).read("data.json"))
    assert len(data["orders"]) == 43


def test_closed_account_cannot_sign_in_again(client, account, shopper):
    PrivacyAccount.objects.filter(pk=account.pk).update(closed_at="2026-01-01T00:00:00Z")
    client.force_login(account.user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/privacy/").status_code == 302


def test_requests_are_listed_for_the_privacy_officer(client, shopper, superuser):
    done = rights.request_correction(member=shopper, account=None, details="城市错了")
    client.force_login(superuser)
    response = client.get("/admin/privacy/datasubjectrequest/")
    assert response.status_code == 200
    assert f"/admin/privacy/datasubjectrequest/{done.pk}/change/" in response.content.decode()
    assert client.get(f"/admin/privacy/datasubjectrequest/{done.pk}/change/").status_code == 200


def test_erasure_also_forgets_unfinished_sign_ins_for_the_same_address(client, shopper):
    from allauth.account.models import EmailAddress

    client.post("/privacy/accounts/login/code/", {"email": "xiaohua@example.com"})  # never confirmed
    client.post("/privacy/accounts/login/code/", {"phone": "13800138000"})
    assert EmailAddress.objects.filter(email="xiaohua@example.com").exists()
    rights.carry_out_deletion(DataSubjectRequest.objects.create(member=shopper, kind="deletion").pk)
    assert not EmailAddress.objects.filter(email="xiaohua@example.com").exists()
    assert not PrivacyAccount.objects.filter(phone="+8613800138000").exists()


def test_zip_csv_files_neutralise_spreadsheet_formulas(db):
    import io as _io
    import zipfile as _zipfile

    from privacy.export import build_zip
    from tests.factories import MemberFactory

    member = MemberFactory(name='=HYPERLINK("http://evil")', city="@SUM(1)")

    with _zipfile.ZipFile(_io.BytesIO(build_zip(member))) as archive:
        profile = archive.read("profile.csv").decode("utf-8-sig")

    assert "'=HYPERLINK" in profile and "'@SUM(1)" in profile

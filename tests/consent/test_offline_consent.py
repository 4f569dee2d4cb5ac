"""Consent given on paper (a form signed at a store counter, a letter) is recorded by the
privacy officer through the same service as every other source, with the scan of the
signed form as evidence (issue 25 item 8)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from consent import services
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from members.identities import erased_value
from members.models import Identity, Member, StoreMembership
from tests.factories import BrandFactory, MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

PAPER = reverse("admin:consent_consentevent_paper")


def pdf_bytes(text: str = "I agree to receive SMS offers.") -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.save()
    return out.getvalue()


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def officer(lotus_officer, media):
    return lotus_officer


@pytest.fixture
def counter(brand):
    return StoreFactory(brand=brand, code="lotus-sh-pos", name="上海专柜", platform="pos")


@pytest.fixture
def person(lotus_shopper):
    return lotus_shopper


@pytest.fixture
def agreement(brand):
    return services.publish_notice(brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans",
                                   title="会员协议", body="纸质版 v1",
                                   published_at=timezone.now() - dt.timedelta(days=60))  # fmt: skip


def form_data(purpose: Purpose, notice: Notice, store, *, scan: bytes | None = None, name: str = "form.pdf",
              content_type: str = "application/pdf", **extra) -> dict:  # fmt: skip
    data = {
        "phone_region": "CN", "phone": "138 0013 8000", "member": "", "store_member_id": "",
        "store": store.pk, "signed_on": (timezone.localdate() - dt.timedelta(days=2)).isoformat(), "signed_at": "",
        "notice": notice.pk, "reference": "F-0042", f"choice__{purpose.pk}__sms": "granted",
        f"choice__{purpose.pk}__email": "",
        "scan": SimpleUploadedFile(name, pdf_bytes() if scan is None else scan, content_type=content_type),
    }  # fmt: skip
    data.update(extra)
    return data


def stored_files(media) -> list:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def test_a_signed_form_is_in_the_ledger_with_its_scan_as_evidence(
    client, officer, person, marketing_purpose, agreement, counter, media
):
    scan = pdf_bytes()
    response = client.post(PAPER, form_data(marketing_purpose, agreement, counter, scan=scan))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:consent_consentevent_changelist") + f"?member={person.pk}"
    event = ConsentEvent.objects.get()
    sha = hashlib.sha256(scan).hexdigest()
    assert (event.member_id, event.source_type, event.source_ref, event.store_id, event.notice_id) == (
        person.pk, "paper_form", "officer-lotus", counter.pk, agreement.pk,
    )  # fmt: skip
    assert event.evidence["scan"]["sha256"] == sha and event.evidence["form"] == "paper"
    assert event.evidence["reference"] == "F-0042"
    assert event.evidence["signed_on"] == (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    # No time on the form: a grant counts from the start of the day it was signed.
    assert timezone.localtime(event.occurred_at).time() == dt.time.min
    with default_storage.open(event.evidence["scan"]["file"]) as kept:
        assert kept.read() == scan
    state = ConsentState.objects.get(member=person, purpose=marketing_purpose, channel="sms")
    assert (state.action, state.event_id) == ("granted", event.pk)
    log = AuditLog.objects.get(action="consent.paper_recorded")
    assert log.actor_user == officer and log.object_id == str(person.pk)
    assert log.changes["events"] == [event.pk] and log.changes["scan_sha256"] == sha
    # The chain covers the scan's hash: the ledger verifies.
    call_command("verify_consent_ledger")

    receipt = client.get(reverse("admin:consent_consentevent_receipt", args=[event.pk])).content.decode()
    scan_url = reverse("admin:consent_consentevent_scan", args=[event.pk])
    assert f'href="{scan_url}"' in receipt and sha in receipt and 'data-scan-state="intact"' in receipt
    opened = client.get(scan_url)
    assert opened.status_code == 200 and opened["Content-Type"] == "application/pdf"
    assert b"".join(opened.streaming_content) == scan
    assert AuditLog.objects.filter(action="pii.viewed", changes__view="consent_consentevent_scan").exists()


def test_the_same_form_twice_records_nothing_new_and_a_corrected_box_does(
    client, officer, person, marketing_purpose, agreement, counter
):
    scan = pdf_bytes()
    client.post(PAPER, form_data(marketing_purpose, agreement, counter, scan=scan))
    again = client.post(PAPER, form_data(marketing_purpose, agreement, counter, scan=scan), follow=True)
    assert ConsentEvent.objects.count() == 1
    assert "recorded before" in again.content.decode()

    corrected = form_data(marketing_purpose, agreement, counter, scan=scan,
                          **{f"choice__{marketing_purpose.pk}__sms": "withdrawn"})  # fmt: skip
    client.post(PAPER, corrected)
    assert list(ConsentEvent.objects.order_by("pk").values_list("action", flat=True)) == ["granted", "withdrawn"]
    assert ConsentState.objects.get(member=person, purpose=marketing_purpose).action == "withdrawn"


def test_a_new_phone_becomes_a_member_of_the_counter_through_identity_resolution(
    client, officer, marketing_purpose, agreement, counter, brand
):
    response = client.post(PAPER, form_data(marketing_purpose, agreement, counter, phone="139 1234 5678"))

    assert response.status_code == 302
    member = Member.objects.get(phone="+8613912345678")
    assert Identity.objects.filter(member=member, kind="phone", value="+8613912345678").exists()
    membership = StoreMembership.objects.get(member=member)
    assert (membership.store_id, membership.store_member_id) == (counter.pk, "+8613912345678")
    assert AuditLog.objects.filter(action="member.created", object_id=str(member.pk)).exists()
    assert ConsentEvent.objects.get().member_id == member.pk
    assert AuditLog.objects.get(action="consent.paper_recorded").changes["new_member"] is True


def test_a_known_member_by_id_and_an_email_grant_waits_for_double_opt_in(
    client, officer, person, marketing_purpose, agreement, tmall
):
    data = form_data(marketing_purpose, agreement, tmall, phone="", member=str(person.pk),
                     **{f"choice__{marketing_purpose.pk}__sms": "withdrawn",
                        f"choice__{marketing_purpose.pk}__email": "granted"})  # fmt: skip
    assert client.post(PAPER, data).status_code == 302
    actions = dict(ConsentEvent.objects.values_list("channel", "action"))
    assert actions == {"sms": "withdrawn", "email": "requested"}  # DESIGN.md ⚑ default deny


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("form.pdf", b"<html><script>alert(1)</script></html>", "application/pdf"),  # forged: not a PDF at all
        ("form.pdf", b"%PDF-1.4\nnot really a pdf", "application/pdf"),  # the magic, then nothing readable
        ("form.pdf", "PNG", "application/pdf"),  # a PNG named .pdf
        ("form.txt", b"just text", "text/plain"),  # a wrong type
        ("form.pdf", b"", "application/pdf"),  # empty
        ("form.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png"),  # a damaged image
    ],
)
def test_a_file_that_is_not_a_scan_is_a_form_error_and_nothing_is_recorded(
    client, officer, person, marketing_purpose, agreement, counter, media, name, content, content_type
):
    content = png_bytes() if content == "PNG" else content
    response = client.post(PAPER, form_data(marketing_purpose, agreement, counter, scan=content, name=name,
                                            content_type=content_type))  # fmt: skip
    assert response.status_code == 400
    assert "scan" in response.context["form"].errors
    assert not ConsentEvent.objects.exists() and not AuditLog.objects.filter(action="consent.paper_recorded").exists()
    assert stored_files(media) == []


def test_an_oversized_scan_is_refused(client, officer, person, marketing_purpose, agreement, counter, media, settings):
    settings.CONSENT_SCAN_MAX_BYTES = 500
    response = client.post(PAPER, form_data(marketing_purpose, agreement, counter))
    assert response.status_code == 400 and "up to" in str(response.context["form"].errors["scan"])
    assert not ConsentEvent.objects.exists() and stored_files(media) == []


def test_a_notice_of_another_purpose_cannot_stand_for_the_form(
    client, officer, person, marketing_purpose, counter, brand, media
):
    other = Purpose.objects.create(brand=brand, code="analytics", name="分析")
    wrong = services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=other,
                                    locale="zh-hans", title="分析", body="v1")  # fmt: skip
    response = client.post(PAPER, form_data(marketing_purpose, wrong, counter))
    assert response.status_code == 400 and "notice" in response.context["form"].errors
    assert not ConsentEvent.objects.exists() and stored_files(media) == []


def test_the_phone_of_an_erased_person_is_refused_and_the_scan_is_not_kept(
    client, officer, marketing_purpose, agreement, counter, media
):
    erased = MemberFactory(phone="", email="", name="", status=Member.Status.ERASED)
    Identity.objects.create(member=erased, kind="phone", value=erased_value("phone", "+8613700137000"))
    response = client.post(PAPER, form_data(marketing_purpose, agreement, counter, phone="13700137000"))
    assert response.status_code == 400 and "erased" in str(response.context["form"].errors["phone"])
    assert not ConsentEvent.objects.exists() and stored_files(media) == []


def test_bad_person_and_dates_are_shown_on_the_form(client, officer, person, marketing_purpose, agreement, counter):
    both = client.post(PAPER, form_data(marketing_purpose, agreement, counter, member=str(person.pk)))
    neither = client.post(PAPER, form_data(marketing_purpose, agreement, counter, phone=""))
    bad_phone = client.post(PAPER, form_data(marketing_purpose, agreement, counter, phone="12"))
    future = client.post(PAPER, form_data(marketing_purpose, agreement, counter,
                                          signed_on=(timezone.localdate() + dt.timedelta(days=1)).isoformat()))  # fmt: skip
    no_box = client.post(PAPER, form_data(marketing_purpose, agreement, counter,
                                          **{f"choice__{marketing_purpose.pk}__sms": ""}))  # fmt: skip
    assert {r.status_code for r in (both, neither, bad_phone, future, no_box)} == {400}
    assert "phone" in both.context["form"].errors and "phone" in neither.context["form"].errors
    assert "phone" in bad_phone.context["form"].errors
    assert "signed_on" in future.context["form"].errors
    assert no_box.context["form"].non_field_errors()
    assert not ConsentEvent.objects.exists()


@pytest.fixture
def other_officer(brand):
    other = BrandFactory(code="rose", name="玫瑰")
    StoreFactory(brand=other, code="rose-jd", platform="jd")
    user = UserFactory(username="officer-rose", is_staff=True)
    user.groups.add(Group.objects.get(name="Privacy officer"))
    other.staff.add(user)
    return user


def test_staff_of_another_brand_can_neither_record_for_it_nor_open_its_scans(
    client, officer, other_officer, person, marketing_purpose, agreement, counter, brand
):
    client.post(PAPER, form_data(marketing_purpose, agreement, counter))
    event = ConsentEvent.objects.get()
    client.force_login(other_officer)

    assert client.get(PAPER, {"brand": brand.pk}).status_code == 404
    posted = client.post(PAPER + f"?brand={brand.pk}", form_data(marketing_purpose, agreement, counter))
    assert posted.status_code == 404
    assert client.get(reverse("admin:consent_consentevent_scan", args=[event.pk])).status_code == 404
    assert client.get(reverse("admin:consent_consentevent_receipt", args=[event.pk])).status_code == 404
    # Their own page offers their brand only, and a member id of brand A is not theirs.
    page = client.get(PAPER)
    assert page.status_code == 200 and page.context["brand"].code == "rose"
    assert ConsentEvent.objects.count() == 1


def test_the_page_needs_the_permission_and_the_scan_needs_personal_data_rights(
    client, officer, person, marketing_purpose, agreement, counter, consent_clerk
):
    client.post(PAPER, form_data(marketing_purpose, agreement, counter))
    event = ConsentEvent.objects.get()
    client.force_login(consent_clerk)  # reads the ledger, may not see personal data
    assert client.get(PAPER).status_code == 403
    assert client.post(PAPER, form_data(marketing_purpose, agreement, counter)).status_code == 403
    receipt = client.get(reverse("admin:consent_consentevent_receipt", args=[event.pk])).content.decode()
    assert "receipt-scan" not in receipt
    assert client.get(reverse("admin:consent_consentevent_scan", args=[event.pk])).status_code == 403
    client.force_login(UserFactory(username="nobody", is_staff=True))
    assert client.get(PAPER).status_code == 403
    assert ConsentEvent.objects.count() == 1


def test_the_ledger_links_the_page_for_officers_only(client, officer, consent_clerk, django_assert_max_num_queries):
    ledger = reverse("admin:consent_consentevent_changelist")
    assert PAPER in client.get(ledger).content.decode()
    with django_assert_max_num_queries(12):
        page = client.get(PAPER)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.content.decode()
    client.force_login(consent_clerk)
    assert PAPER not in client.get(ledger).content.decode()


def test_an_erasure_deletes_the_scan_and_the_ledger_keeps_its_hash(
    client, officer, person, marketing_purpose, agreement, counter, media, django_capture_on_commit_callbacks
):
    client.post(PAPER, form_data(marketing_purpose, agreement, counter))
    event = ConsentEvent.objects.get()
    path = event.evidence["scan"]["file"]
    assert default_storage.exists(path)

    # The person asks at the counter for their data to be deleted: the officer records it.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:privacy_datasubjectrequest_offline"),
                    {"person": str(person.pk), "kind": "deletion", "via": "store_counter", "details": "",
                     "received_at": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip
    person.refresh_from_db()
    assert person.status == Member.Status.ERASED

    assert not default_storage.exists(path) and stored_files(media) == []
    event = ConsentEvent.objects.get(source_type="paper_form")
    assert event.evidence["scan"]["sha256"]  # the proof stays
    receipt = client.get(reverse("admin:consent_consentevent_receipt", args=[event.pk])).content.decode()
    assert 'data-scan-state="gone"' in receipt
    assert client.get(reverse("admin:consent_consentevent_scan", args=[event.pk])).status_code == 404


def test_a_changed_file_is_flagged_on_the_receipt(client, officer, person, marketing_purpose, agreement, counter):
    client.post(PAPER, form_data(marketing_purpose, agreement, counter))
    event = ConsentEvent.objects.get()
    path = event.evidence["scan"]["file"]
    default_storage.delete(path)
    default_storage.save(path, io.BytesIO(pdf_bytes("I agree to everything.")))
    receipt = client.get(reverse("admin:consent_consentevent_receipt", args=[event.pk])).content.decode()
    assert 'data-scan-state="changed"' in receipt


@pytest.mark.parametrize(
    ("at", "action", "expected"),
    [
        (dt.time(15, 30), "granted", dt.time(15, 30)),
        (None, "granted", dt.time.min),
        (None, "withdrawn", dt.time.max),
    ],
)
def test_when_a_paper_choice_counts_from(at, action, expected):
    day = dt.date(2026, 3, 1)
    moment = services.paper_moment(day, at, action, now=timezone.make_aware(dt.datetime(2026, 6, 1)))
    assert (timezone.localtime(moment).date(), timezone.localtime(moment).time()) == (day, expected)


def test_a_withdrawal_signed_today_without_a_time_counts_from_now_not_tonight():
    now = timezone.now()
    assert services.paper_moment(timezone.localdate(now), None, "withdrawn", now=now) == now


def test_staff_of_several_brands_say_whose_form_it_is_first(
    client, superuser, other_officer, person, marketing_purpose, agreement, counter, brand, media
):
    client.force_login(superuser)  # the admin once answered 403 even to a superuser here
    chooser = client.get(PAPER)
    assert chooser.status_code == 200 and chooser.context["brand"] is None
    offered = {b.code for b in chooser.context["brand_form"].fields["brand"].queryset}
    assert offered == {"lotus", "rose"}
    assert client.get(PAPER, {"brand": "x"}).status_code == 404

    page = client.get(PAPER, {"brand": brand.pk})
    assert page.context["brand"] == brand
    assert set(page.context["form"].fields["store"].queryset) == set(brand.stores.all())
    response = client.post(PAPER + f"?brand={brand.pk}", form_data(marketing_purpose, agreement, counter))
    assert response.status_code == 302
    assert ConsentEvent.objects.get().source_ref == "root"

"""Every view of full phone numbers, e-mails and identities writes one ``pii.viewed``
audit row (per page or file, not per member); masked views write nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cdp.models import AuditLog
from consent import services
from consent.models import Action, Suppression
from members.models import MergeEvent, StoreMembership
from privacy import rights
from privacy.models import PrivacyAccount
from tests.conftest import see_every_brand
from tests.factories import MemberFactory, UserFactory, make_members

pytestmark = pytest.mark.django_db


def viewed() -> list[AuditLog]:
    return list(AuditLog.objects.filter(action="pii.viewed").order_by("id"))


@pytest.fixture
def officer_client(client, privacy_officer):
    client.force_login(privacy_officer)
    return client


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def test_member_page_with_full_pii_writes_one_row_naming_the_member(officer_client, privacy_officer, tmall):
    [member] = make_members(tmall, 1)
    page = officer_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert member.phone and member.phone in page
    [row] = viewed()
    assert row.object_type == "members.member" and row.object_id == str(member.pk)
    assert row.actor_user_id == privacy_officer.pk
    assert row.changes == {"members": [member.pk], "count": 1, "view": "members_member_change"}


def test_member_list_with_full_pii_writes_one_row_for_the_page(officer_client, tmall, django_assert_max_num_queries):
    members = make_members(tmall, 60)
    with django_assert_max_num_queries(9):
        response = officer_client.get(reverse("admin:members_member_changelist"))
    shown = sorted(m.pk for m in response.context["cl"].result_list)
    [row] = viewed()
    assert len(shown) == 50 and row.changes["members"] == shown and row.changes["count"] == 50
    assert row.changes["view"] == "members_member_changelist" and row.object_id == ""
    assert {m.pk for m in members} > set(shown)


def test_masked_views_write_nothing(marketer_client, tmall):
    [member] = make_members(tmall, 1)
    marketer_client.get(reverse("admin:members_member_changelist"))
    marketer_client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert viewed() == []


def test_an_empty_list_writes_nothing(officer_client):
    officer_client.get(reverse("admin:members_member_changelist"))
    assert viewed() == []


def test_merge_event_with_the_profile_values_it_changed(client, superuser, tmall):
    # The shared identity is a keyed hash shown masked; the profile values are what is unmasked.
    survivor, absorbed = MemberFactory(), MemberFactory()
    event = MergeEvent.objects.create(
        survivor=survivor, absorbed=absorbed, rule="phone", matched_value="erased:x", matched_display="138****8000",
        moved={}, profile_changes={"phone": ["", "+8613800138000"]},
    )  # fmt: skip
    client.force_login(superuser)
    assert "+8613800138000" in client.get(reverse("admin:members_mergeevent_change", args=[event.pk])).content.decode()
    [row] = viewed()
    assert row.object_id == str(survivor.pk) and row.changes["members"] == sorted([survivor.pk, absorbed.pk])


def test_data_request_page_shows_contact_points_audited(client, superuser):
    member = MemberFactory(phone="+8613900139000")
    request = rights.request_correction(member=member, account=None, details="x")
    client.force_login(superuser)
    page = client.get(reverse("admin:privacy_datasubjectrequest_change", args=[request.pk])).content.decode()
    assert "+8613900139000" in page
    [row] = viewed()
    assert row.object_id == str(member.pk) and row.changes["view"] == "privacy_datasubjectrequest_change"


def test_data_request_page_masks_without_the_permission(client, tmall):
    staff = UserFactory(username="dsr-clerk", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_datasubjectrequest"]))
    see_every_brand(staff)
    member = MemberFactory(phone="+8613900139000")
    request = rights.request_correction(member=member, account=None, details="x")
    client.force_login(staff)
    page = client.get(reverse("admin:privacy_datasubjectrequest_change", args=[request.pk])).content.decode()
    assert "139****9000" in page and "+8613900139000" not in page
    assert viewed() == []


def test_privacy_account_phone(client, superuser, marketer):
    member = MemberFactory()
    account = PrivacyAccount.objects.create(user=UserFactory(username="p1"), member=member, phone="+8613700137000")
    url = reverse("admin:privacy_privacyaccount_change", args=[account.pk])
    client.force_login(superuser)
    assert "+8613700137000" in client.get(url).content.decode()
    [row] = viewed()
    assert row.changes["view"] == "privacy_privacyaccount_change" and row.changes["account"] == account.pk


def test_store_export_lists_the_members_in_the_file(client, superuser, tmall):
    members = make_members(tmall, 3)
    client.force_login(superuser)
    response = client.get(reverse("admin:imports_importjob_export"), {"store": tmall.pk})
    b"".join(response.streaming_content)
    [row] = viewed()
    assert row.changes["members"] == sorted(m.pk for m in members) and row.changes["store"] == tmall.code


def test_ledger_export_and_event_page_with_evidence(client, superuser, tmall):
    from consent.models import Notice, Purpose

    marketing_purpose = Purpose.objects.create(brand=tmall.brand, code="marketing", name="营销", channels=["sms"])
    services.publish_notice(
        brand=tmall.brand,
        kind=Notice.Kind.PURPOSE_NOTICE,
        purpose=marketing_purpose,
        locale="zh-hans",
        title="t",
        body="v",
    )
    [member] = make_members(tmall, 1)
    event = services.record_consent(
        member=member, brand=tmall.brand, purpose=marketing_purpose, channel="sms", action=Action.GRANTED,
        source_type="store", store=tmall, evidence={"ip": "203.0.113.9"},
    ).event  # fmt: skip
    client.force_login(superuser)
    assert "203.0.113.9" in client.get(reverse("admin:consent_consentevent_change", args=[event.pk])).content.decode()
    b"".join(client.get(reverse("admin:consent_consentevent_export")).streaming_content)
    page_row, export_row = viewed()
    assert page_row.object_id == str(member.pk) and page_row.changes["event"] == event.pk
    assert export_row.changes == {"members": [member.pk], "count": 1, "view": "consent_consentevent_export"}


def test_suppression_list_names_the_entries_shown(client, superuser, brand):
    entry = Suppression.objects.create(brand=brand, channel="sms", value="+8613600136000", reason="bounced")
    client.force_login(superuser)
    # Suppressions keep only a keyed hash and a masked form (DESIGN.md ⚑ deletion).
    assert "136****6000" in client.get(reverse("admin:consent_suppression_changelist")).content.decode()
    [row] = viewed()
    assert row.changes["suppressions"] == [entry.pk] and row.changes["count"] == 0


def test_segment_export_file_lists_the_people_in_it(client, superuser, brand, tmall):
    from consent.models import Notice, Purpose
    from tests.segments.conftest import build, grant, make_segment, shopper

    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="v"
    )
    people = [shopper(tmall, city="上海") for _ in range(2)]
    for person in people:
        grant(person, purpose)
    done = build(make_segment(brand, purpose, {"all": [{"field": "city", "op": "=", "value": "上海"}]}))
    client.force_login(superuser)
    client.post(reverse("admin:segments_segmentbuild_export", args=[done.pk]), {"kind": "send"})
    from segments.models import SegmentExport

    export = SegmentExport.objects.get()
    b"".join(client.get(reverse("admin:segments_segmentexport_csv", args=[export.pk])).streaming_content)
    [row] = viewed()
    assert row.changes["members"] == sorted(p.pk for p in people) and row.changes["export"] == export.pk
    assert StoreMembership.objects.count() == 2

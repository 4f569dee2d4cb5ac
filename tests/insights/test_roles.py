"""The staff roles seeded as groups: what each one can open and do over HTTP, and that
seeding keeps the groups true to ``insights.roles``."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from cdp.models import AuditLog
from consent.models import Purpose
from insights import roles
from members.models import Identity, StoreMembership
from privacy import rights
from segments.models import SegmentExport
from tests.conftest import see_every_brand
from tests.factories import MemberFactory, UserFactory
from tests.insights.conftest import PERIOD
from tests.segments.conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db

FULL_PHONE, MASKED_PHONE = "+8613800138000", "138****8000"


def login(role: str) -> Client:
    user = see_every_brand(UserFactory(username=role.lower().replace(" ", "-"), is_staff=True))
    user.groups.add(Group.objects.get(name=role))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def member(tmall):
    person = MemberFactory(phone=FULL_PHONE, email="alice@example.com")
    Identity.objects.create(member=person, kind="phone", value=FULL_PHONE)
    StoreMembership.objects.create(member=person, store=tmall, store_member_id="T1")
    return person


@pytest.fixture
def correction(member):
    return rights.request_correction(member=member, account=None, details="wrong city")


@pytest.fixture
def segment_build(brand, tmall):
    from consent import services as consent_services
    from consent.models import Notice

    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    consent_services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="v1"
    )
    grant(shopper(tmall, city="上海"), purpose)
    return build(make_segment(brand, purpose, {"all": [{"field": "city", "op": "=", "value": "上海"}]}))


def member_page(member) -> str:
    return reverse("admin:members_member_change", args=[member.pk])


ADMIN_PAGES = {
    "ledger": reverse("admin:consent_consentevent_changelist"),
    "notices": reverse("admin:consent_notice_changelist"),
    "add_notice": reverse("admin:consent_notice_add"),
    "queue": reverse("admin:privacy_datasubjectrequest_changelist"),
    "users": reverse("admin:auth_user_changelist"),
    "groups": reverse("admin:auth_group_changelist"),
    "audit": reverse("admin:cdp_auditlog_changelist"),
    "segments": reverse("admin:segments_segment_changelist"),
    "import": reverse("admin:imports_importjob_changelist"),
}


def statuses(client: Client) -> dict[str, int]:
    return {name: client.get(url).status_code for name, url in ADMIN_PAGES.items()}


def dashboard_csv(client: Client, brand) -> int:
    return client.get("/admin/insights/dashboard/data-requests.csv", {"brand": brand.pk, **PERIOD}).status_code


def test_marketer_works_with_masked_members_segments_and_exports(member, correction, segment_build, brand):
    client = login(roles.MARKETER)
    page = client.get(member_page(member)).content.decode()
    assert MASKED_PHONE in page and FULL_PHONE not in page and "alice@example.com" not in page
    assert not AuditLog.objects.filter(action="pii.viewed").exists()  # masked views are not audited
    assert statuses(client) == {
        "ledger": 403, "notices": 200, "add_notice": 403, "queue": 403, "users": 403, "groups": 403,
        "audit": 403, "segments": 200, "import": 200,
    }  # fmt: skip
    export = client.post(
        reverse("admin:segments_segmentbuild_export", args=[segment_build.pk]), {"kind": "send", "campaign": "c"}
    )
    assert export.status_code == 302 and SegmentExport.objects.count() == 1
    assert client.post(reverse("admin:privacy_datasubjectrequest_assign", args=[correction.pk]), {}).status_code == 403
    assert dashboard_csv(client, brand) == 200
    assert not client.user.has_perm("insights.view_compliance_report")


def test_privacy_officer_sees_full_pii_audited_the_ledger_notices_and_the_queue(
    member, correction, segment_build, brand
):
    client = login(roles.PRIVACY_OFFICER)
    page = client.get(member_page(member)).content.decode()
    assert FULL_PHONE in page and "alice@example.com" in page
    viewed = AuditLog.objects.get(action="pii.viewed")
    assert viewed.actor_user_id == client.user.pk and viewed.object_id == str(member.pk)
    assert statuses(client) == {
        "ledger": 200, "notices": 200, "add_notice": 200, "queue": 200, "users": 403, "groups": 403,
        "audit": 200, "segments": 200, "import": 200,
    }  # fmt: skip
    assigned = client.post(reverse("admin:privacy_datasubjectrequest_assign", args=[correction.pk]), {"assignee": "me"})
    assert assigned.status_code == 302
    correction.refresh_from_db()
    assert correction.assignee == client.user
    export = client.post(reverse("admin:segments_segmentbuild_export", args=[segment_build.pk]), {"kind": "send"})
    assert export.status_code == 403  # campaigns are the marketers' job
    assert dashboard_csv(client, brand) == 200
    assert client.user.has_perm("insights.view_compliance_report")


def test_administrator_manages_users_and_everything_else(member, correction):
    client = login(roles.ADMINISTRATOR)
    assert set(statuses(client).values()) == {200}
    assert client.get(reverse("admin:auth_user_add")).status_code == 200
    assert client.user.has_perm("members.view_pii") and client.user.has_perm("insights.view_compliance_report")
    assert FULL_PHONE in client.get(member_page(member)).content.decode()


def test_staff_without_a_role_sees_no_dashboard(client, brand):
    client.force_login(UserFactory(username="no-role", is_staff=True))
    assert dashboard_csv(client, brand) == 403


def test_seeding_is_idempotent_and_resets_groups_to_the_definition():
    out = io.StringIO()
    call_command("seed_roles", stdout=out)
    assert "Marketer: unchanged" in out.getvalue() and "Privacy officer: unchanged" in out.getvalue()
    marketer = Group.objects.get(name=roles.MARKETER)
    marketer.permissions.add(Permission.objects.get(codename="view_pii"))
    marketer.permissions.remove(Permission.objects.get(codename="export_segment"))
    out = io.StringIO()
    call_command("seed_roles", stdout=out)
    text = out.getvalue()
    assert "Marketer: updated" in text and "+segments.export_segment" in text and "-members.view_pii" in text
    assert not marketer.permissions.filter(codename="view_pii").exists()
    assert marketer.permissions.filter(codename="export_segment").exists()
    again = io.StringIO()
    call_command("seed_roles", stdout=again)
    assert again.getvalue().count("unchanged") == 3


def test_a_deleted_group_comes_back():
    Group.objects.filter(name=roles.PRIVACY_OFFICER).delete()
    out = io.StringIO()
    call_command("seed_roles", stdout=out)
    assert "Privacy officer: created" in out.getvalue()
    assert Group.objects.get(name=roles.PRIVACY_OFFICER).permissions.filter(codename="view_pii").exists()


def test_every_permission_a_role_names_exists(monkeypatch):
    monkeypatch.setitem(roles.ROLES, "Broken", ["members.view_nothing"])
    with pytest.raises(Exception, match="members.view_nothing"):
        roles.seed_roles()


def test_demo_staff_users_get_their_roles(settings):
    settings.DEBUG = True
    call_command("ensure_demo_admin", stdout=io.StringIO())
    for username, password, role in [("marketer", "marketer", "Marketer"), ("privacy", "privacy", "Privacy officer")]:
        client = Client()
        assert client.login(username=username, password=password)
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role] and not user.is_superuser


def test_demo_marketer_and_officer_work_for_the_first_brand_and_the_administrator_for_all(settings):
    from django.contrib.auth import get_user_model

    from cdp.admin_scope import staff_brand_ids
    from members.models import Brand
    from tests.factories import BrandFactory

    first, _other = BrandFactory(code="a-brand", name="Alpha"), BrandFactory(code="b-brand", name="Beta")
    settings.DEBUG = True
    out = io.StringIO()
    call_command("ensure_demo_admin", stdout=out)
    users = get_user_model().objects
    assert staff_brand_ids(users.get(username="marketer")) == frozenset([first.pk])
    assert staff_brand_ids(users.get(username="privacy")) == frozenset([first.pk])
    assert staff_brand_ids(users.get(username="administrator")) is None
    assert "Marketer: user marketer  password marketer (brand Alpha)" in out.getvalue()
    assert Brand.objects.count() == 2

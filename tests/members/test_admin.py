"""The marketer site for members: flat query counts, masked PII, search, unmerge."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cdp.models import AuditLog
from members import services
from members.identities import StoreRecord
from members.models import Member, MergeEvent
from tests.factories import OrderFactory, make_members

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:members_member_changelist")
LIST_QUERIES = 8
DETAIL_QUERIES = 11  # with the pii.viewed audit row and the data-request section a superuser sees


def change_url(member):
    return reverse("admin:members_member_change", args=[member.pk])


def resolve(store, member_id, **values):
    return services.resolve_store_record(StoreRecord.clean(store=store, store_member_id=member_id, **values))


@pytest.mark.parametrize("count", [10, 1000])
def test_member_list_queries_stay_flat(client, superuser, tmall, count, django_assert_max_num_queries):
    make_members(tmall, count)
    client.force_login(superuser)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == min(count, 50)


@pytest.mark.parametrize("orders", [1, 200])
def test_member_detail_queries_stay_flat(client, superuser, tmall, orders, django_assert_max_num_queries):
    [member] = make_members(tmall, 1, orders_each=orders)
    client.force_login(superuser)
    with django_assert_max_num_queries(DETAIL_QUERIES):
        response = client.get(change_url(member))
    assert response.status_code == 200
    assert "M0-0" in response.content.decode()


@pytest.mark.parametrize("count", [10, 1000])
def test_order_list_queries_stay_flat(client, superuser, tmall, count, django_assert_max_num_queries):
    make_members(tmall, count // 10, orders_each=10)
    client.force_login(superuser)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(reverse("admin:members_order_changelist"))
    assert response.status_code == 200


def test_marketer_sees_masked_contact_points(client, marketer, tmall):
    [member] = make_members(tmall, 1)
    client.force_login(marketer)
    listing = client.get(CHANGELIST).content.decode()
    detail = client.get(change_url(member)).content.decode()
    for page in (listing, detail):
        assert "139****0000" in page
        assert "m***@example.com" in page
        assert "+8613900000000" not in page
        assert "m0@example.com" not in page


def test_privacy_officer_sees_full_contact_points(client, privacy_officer, tmall):
    [member] = make_members(tmall, 1)
    client.force_login(privacy_officer)
    detail = client.get(change_url(member)).content.decode()
    assert "+8613900000000" in detail
    assert "m0@example.com" in detail


@pytest.mark.parametrize(
    "term", ["139 0000 0000", "+86-139-0000-0000", "8613900000000", "M0@Example.com", "S0", "会员0"]
)
def test_search_by_any_identifier(client, marketer, tmall, term):
    make_members(tmall, 3)
    client.force_login(marketer)
    response = client.get(CHANGELIST, {"q": term})
    names = [m.name for m in response.context["cl"].result_list]
    assert names == ["会员0"]


def test_platform_and_store_count_filters(client, marketer, tmall, jd):
    resolve(tmall, "T1", phone="13800138000", name="双店")
    resolve(jd, "J1", phone="13800138000")
    resolve(jd, "J2", phone="13800138001", name="单店")
    client.force_login(marketer)
    two = client.get(CHANGELIST, {"stores": "2"}).context["cl"].result_list
    assert [m.name for m in two] == ["双店"]
    on_tmall = client.get(CHANGELIST, {"platform": "tmall"}).context["cl"].result_list
    assert [m.name for m in on_tmall] == ["双店"]


def test_unmerge_from_the_member_page(client, marketer, tmall, jd, wechat):
    older = resolve(tmall, "T1", phone="13800138000").member
    younger = resolve(jd, "J1", email="wei@example.com").member
    OrderFactory(store=jd, member=younger)
    event = resolve(wechat, "W1", phone="13800138000", email="wei@example.com").merges[0]
    client.force_login(marketer)
    page = client.get(change_url(older)).content.decode()
    url = reverse("admin:members_member_unmerge", args=[older.pk, event.pk])
    assert url in page

    confirm = client.get(url)
    assert confirm.status_code == 200
    event.refresh_from_db()
    assert event.undone_at is None  # GET only asks

    response = client.post(url, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    younger.refresh_from_db()
    assert younger.status == Member.Status.ACTIVE
    log = AuditLog.objects.get(action="member.unmerged")
    assert (log.actor_label, log.ip_address, log.object_id) == ("marketer", "10.1.2.3", str(younger.pk))


def test_unmerge_requires_change_permission(client, tmall, jd, wechat):
    from tests.conftest import _staff_with

    viewer = _staff_with("viewer", ["view_member"])
    older = resolve(tmall, "T1", phone="13800138000").member
    resolve(jd, "J1", email="wei@example.com")
    event = resolve(wechat, "W1", phone="13800138000", email="wei@example.com").merges[0]
    client.force_login(viewer)
    response = client.post(reverse("admin:members_member_unmerge", args=[older.pk, event.pk]))
    assert response.status_code == 403
    assert MergeEvent.objects.get().undone_at is None


def test_undo_last_merge_action(client, marketer, tmall, jd, wechat):
    older = resolve(tmall, "T1", phone="13800138000").member
    resolve(jd, "J1", email="wei@example.com")
    resolve(wechat, "W1", phone="13800138000", email="wei@example.com")
    client.force_login(marketer)
    response = client.post(CHANGELIST, {"action": "undo_last_merge", "_selected_action": [older.pk]}, follow=True)
    assert response.status_code == 200
    assert Member.objects.active().count() == 2


def test_profile_correction_is_audited_and_contact_points_are_not_editable(client, marketer, tmall):
    member = resolve(tmall, "T1", phone="13800138000", name="张伟").member
    client.force_login(marketer)
    form = client.get(change_url(member)).context["adminform"].form
    assert "phone" not in form.fields and "email" not in form.fields
    data = {
        "name": "张伟伟",
        "gender": "M",
        "birth_date": "",
        "province": "",
        "city": "上海",
        "locale": "",
        "identities-TOTAL_FORMS": 0,
        "identities-INITIAL_FORMS": 0,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }
    response = client.post(change_url(member), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    member.refresh_from_db()
    assert (member.name, member.city, member.phone) == ("张伟伟", "上海", "+8613800138000")
    log = AuditLog.objects.get(action="member.profile_corrected")
    assert log.changes["name"] == ["张伟", "张伟伟"]
    assert AuditLog.objects.filter(action="admin.change", actor_label="marketer").exists()


def test_members_cannot_be_added_or_deleted_in_admin(client, superuser, tmall):
    [member] = make_members(tmall, 1)
    client.force_login(superuser)
    assert client.get(reverse("admin:members_member_add")).status_code == 403
    assert client.get(reverse("admin:members_member_delete", args=[member.pk])).status_code == 403


def test_audit_log_is_read_only(client, superuser, tmall):
    resolve(tmall, "T1", phone="13800138000")
    log = AuditLog.objects.first()
    client.force_login(superuser)
    assert client.get(reverse("admin:cdp_auditlog_changelist")).status_code == 200
    assert client.get(reverse("admin:cdp_auditlog_add")).status_code == 403
    assert client.get(reverse("admin:cdp_auditlog_delete", args=[log.pk])).status_code == 403

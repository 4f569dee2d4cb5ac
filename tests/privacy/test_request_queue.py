"""The privacy officer's queue of data-subject requests: list, filters, and each action
(assign, complete, extend, refuse) through the admin over HTTP, and what the person sees."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from cdp.models import AuditLog
from members.models import Member, StoreMembership
from privacy import deadlines, rights
from privacy import services as queue
from privacy.models import DataSubjectRequest
from privacy.tasks import erase_member_data
from tests.conftest import see_every_brand
from tests.factories import BrandFactory, MemberFactory, StoreFactory, UserFactory

from .privacy_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:privacy_datasubjectrequest_changelist")
QUEUE_QUERIES = 8  # 7, and the memberships that name each person's brands


def staff(username: str, role: str):
    user = see_every_brand(UserFactory(username=username, is_staff=True))
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def officer(db):
    return staff("officer", "Privacy officer")


@pytest.fixture
def officer_client(client, officer, english):
    client.force_login(officer)
    return client


@pytest.fixture
def correction(shopper):
    return rights.request_correction(member=shopper, account=None, details="我的城市是上海，不是杭州。")


def url(name: str, request: DataSubjectRequest) -> str:
    return reverse(f"admin:privacy_datasubjectrequest_{name}", args=[request.pk])


def make_request(member, *, kind="correction", due_in_days: float = 10, status="received", **fields):
    now = timezone.now()
    return DataSubjectRequest.objects.create(
        member=member, kind=kind, status=status, received_at=now - dt.timedelta(days=1),
        due_at=now + dt.timedelta(days=due_in_days), **fields,
    )  # fmt: skip


# --- The list ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 40])
def test_queue_queries_stay_flat(officer_client, tmall, count, django_assert_max_num_queries):
    for k in range(count):
        member = MemberFactory()
        StoreMembership.objects.create(member=member, store=tmall, store_member_id=f"Q{k}")
        make_request(member, due_in_days=k - 2, assignee=UserFactory(username=f"s{k}", is_staff=True))
    with django_assert_max_num_queries(QUEUE_QUERIES):
        response = officer_client.get(QUEUE)
    assert response.status_code == 200
    with django_assert_max_num_queries(QUEUE_QUERIES):
        assert officer_client.get(QUEUE + f"?deadline=overdue&brand={tmall.brand_id}").status_code == 200


def test_open_requests_come_first_most_urgent_on_top_with_a_written_overdue_badge(officer_client, shopper):
    later = make_request(shopper, due_in_days=9)
    overdue = make_request(shopper, due_in_days=-2)
    soon = make_request(shopper, due_in_days=1)
    done = make_request(shopper, due_in_days=-30, status="completed")
    response = officer_client.get(QUEUE)
    rows = list(response.context["cl"].result_list)
    assert rows == [overdue, soon, later, done]
    html = response.content.decode()
    assert html.count("⚠ Overdue") == 1 and html.count("Due soon") >= 1


def test_filters_open_due_soon_overdue_and_mine(officer_client, officer, shopper):
    overdue = make_request(shopper, due_in_days=-1)
    soon = make_request(shopper, due_in_days=1, assignee=officer)
    later = make_request(shopper, due_in_days=9)
    done = make_request(shopper, due_in_days=1, status="completed", assignee=officer)

    def shown(query: str) -> set[int]:
        return {r.pk for r in officer_client.get(QUEUE + query).context["cl"].result_list}

    assert shown("?deadline=open") == {overdue.pk, soon.pk, later.pk}
    assert shown("?deadline=due_soon") == {soon.pk}
    assert shown("?deadline=overdue") == {overdue.pk}
    assert shown("?assignee=me") == {soon.pk, done.pk}
    assert shown("?assignee=none") == {overdue.pk, later.pk}


def test_brand_filter_uses_the_brands_members(officer_client, shopper, other_shopper):
    mine = make_request(shopper)
    make_request(other_shopper)  # a member of the same brand's JD store
    outsider = MemberFactory()
    StoreMembership.objects.create(
        member=outsider, store=StoreFactory(brand=BrandFactory(code="other")), store_member_id="X"
    )
    theirs = make_request(outsider)
    brand_id = shopper.memberships.get().store.brand_id
    shown = {r.pk for r in officer_client.get(QUEUE + f"?brand={brand_id}").context["cl"].result_list}
    assert mine.pk in shown and theirs.pk not in shown


def test_the_change_page_is_read_only_and_offers_the_actions(officer_client, correction):
    page = officer_client.get(url("change", correction))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="_save"' not in html
    for action in ("complete", "extend", "refuse"):
        assert url(action, correction) in html or action == "extend"  # PIPL: no extension by default
    assert url("extend", correction) not in html
    assert officer_client.post(url("change", correction), {"status": "completed"}).status_code == 405
    correction.refresh_from_db()
    assert correction.status == "received"


# --- Assign -----------------------------------------------------------------------------


def test_assign_to_me_starts_the_work(officer_client, officer, correction):
    response = officer_client.post(url("assign", correction), {"assignee": "me"})
    assert response.status_code == 302
    correction.refresh_from_db()
    assert correction.assignee == officer and correction.status == "in_progress"
    row = AuditLog.objects.get(action="privacy.request_assigned")
    assert row.actor_user_id == officer.pk and row.object_id == str(correction.pk)


def test_assign_to_a_colleague_and_refuse_non_staff(officer_client, correction):
    colleague = UserFactory(username="colleague", is_staff=True)
    shopper_user = UserFactory(username="not-staff")
    officer_client.post(url("assign", correction), {"assignee": shopper_user.pk})
    correction.refresh_from_db()
    assert correction.assignee is None  # not a choice: an error message, nothing changed
    officer_client.post(url("assign", correction), {"assignee": colleague.pk})
    correction.refresh_from_db()
    assert correction.assignee == colleague


def test_assign_needs_post_and_a_csrf_token(officer, correction):
    client = Client(enforce_csrf_checks=True)
    client.force_login(officer)
    assert client.get(url("assign", correction)).status_code == 405
    assert client.post(url("assign", correction), {"assignee": "me"}).status_code == 403
    correction.refresh_from_db()
    assert correction.assignee is None


def test_staff_without_the_permission_cannot_act(client, correction):
    client.force_login(staff("mk", "Marketer"))
    for name in ("assign", "complete", "extend", "refuse"):
        assert client.post(url(name, correction), {"assignee": "me", "reason": "x"}).status_code == 403
    assert client.get(QUEUE).status_code == 403
    correction.refresh_from_db()
    assert correction.status == "received"


def test_bulk_assign_to_me(officer_client, officer, shopper):
    open_one = make_request(shopper)
    closed = make_request(shopper, status="completed")
    response = officer_client.post(
        QUEUE, {"action": "assign_to_me", "_selected_action": [open_one.pk, closed.pk]}, follow=True
    )
    assert response.status_code == 200
    open_one.refresh_from_db()
    closed.refresh_from_db()
    assert open_one.assignee == officer and closed.assignee is None
    assert "1 closed request(s) were left as they are." in response.content.decode()


# --- Complete ---------------------------------------------------------------------------


def test_complete_a_correction_with_a_note_tells_the_person(
    officer_client, correction, signed_in_shopper, django_capture_on_commit_callbacks
):
    assert officer_client.get(url("complete", correction)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(url("complete", correction), {"note": "城市已改为上海。"})
    assert response.status_code == 302
    correction.refresh_from_db()
    assert correction.status == "completed" and correction.completed_at and correction.response == "城市已改为上海。"
    assert AuditLog.objects.filter(action="privacy.request_completed", object_id=str(correction.pk)).exists()
    (message,) = mail.outbox
    assert message.to == ["xiaohua@example.com"] and "城市已改为上海。" in message.body
    assert f"#{correction.pk}" in message.subject
    page = signed_in_shopper.get("/privacy/data/").content.decode()
    assert "城市已改为上海。" in page


def test_a_deletion_is_not_completed_by_hand(officer_client, shopper):
    deletion = make_request(shopper, kind="deletion")
    response = officer_client.post(url("complete", deletion), {"note": ""})
    assert response.status_code == 400
    assert "completed by the erasure itself" in response.content.decode()
    deletion.refresh_from_db()
    assert deletion.status == "received"


def test_a_stuck_deletion_can_be_erased_again(officer_client, shopper, django_capture_on_commit_callbacks):
    deletion = make_request(shopper, kind="deletion")  # its task gave up
    assert 'form="dsr-erase">Run the erasure again' in officer_client.get(url("change", deletion)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert officer_client.post(url("erase", deletion)).status_code == 302
    deletion.refresh_from_db()
    shopper.refresh_from_db()
    assert deletion.status == "completed" and shopper.status == Member.Status.ERASED
    assert AuditLog.objects.filter(action="privacy.erasure_requeued", object_id=str(deletion.pk)).exists()
    again = officer_client.post(url("erase", deletion), follow=True)
    assert "cannot be acted on again" in again.content.decode()


def test_only_deletions_are_erased(officer_client, correction):
    response = officer_client.post(url("erase", correction), follow=True)
    assert "Only deletion requests" in response.content.decode()
    assert officer_client.get(url("erase", correction)).status_code == 405


# --- Extend -----------------------------------------------------------------------------


@pytest.fixture
def gdpr_request(shopper):
    brand = shopper.memberships.get().store.brand
    brand.jurisdiction = "EU"
    brand.save()
    return rights.request_correction(member=shopper, account=None, details="wrong birthday")


def test_extend_needs_a_reason(officer_client, gdpr_request):
    response = officer_client.post(url("extend", gdpr_request), {"reason": "   "})
    assert response.status_code == 400
    assert response.context["form"].errors["reason"] == ["This field is required."]
    gdpr_request.refresh_from_db()
    assert gdpr_request.extended_at is None


def test_extend_moves_the_deadline_by_the_jurisdictions_rule_once(
    officer_client, gdpr_request, signed_in_shopper, django_capture_on_commit_callbacks
):
    first_due = gdpr_request.due_at
    page = officer_client.get(url("extend", gdpr_request)).content.decode()
    expected = deadlines.extended_due_at("EU", received_at=gdpr_request.received_at, due=first_due, kind="correction")
    assert timezone.localtime(expected).strftime("%Y-%m-%d") in page  # the new date is shown before acting
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(url("extend", gdpr_request), {"reason": "需要向三家门店核实记录。"})
    assert response.status_code == 302
    gdpr_request.refresh_from_db()
    assert gdpr_request.due_at == expected and gdpr_request.original_due_at == first_due
    assert "Extended" in officer_client.get(QUEUE).content.decode()
    assert gdpr_request.extension_reason == "需要向三家门店核实记录。"
    row = AuditLog.objects.get(action="privacy.request_extended")
    assert [dt.datetime.fromisoformat(v) for v in row.changes["due_at"]] == [first_due, expected]
    (message,) = mail.outbox
    assert "需要向三家门店核实记录。" in message.body
    assert "需要向三家门店核实记录。" in signed_in_shopper.get("/privacy/data/").content.decode()
    again = officer_client.post(url("extend", gdpr_request), {"reason": "more"})
    assert again.status_code == 400 and "extended once already" in again.content.decode()


def test_an_overdue_request_cannot_be_extended(officer_client, shopper):
    late = make_request(shopper, due_in_days=-1, jurisdiction="RU")
    response = officer_client.post(url("extend", late), {"reason": "busy"})
    assert response.status_code == 400 and "overdue" in response.content.decode()


def test_pipl_requests_cannot_be_extended_by_default(officer_client, correction):
    response = officer_client.post(url("extend", correction), {"reason": "busy"})
    assert response.status_code == 400 and "cannot be extended" in response.content.decode()


# --- Refuse -----------------------------------------------------------------------------


def test_refuse_needs_a_reason_and_records_it(officer_client, correction, django_capture_on_commit_callbacks):
    assert officer_client.post(url("refuse", correction), {"reason": ""}).status_code == 400
    correction.refresh_from_db()
    assert correction.status == "received"
    with django_capture_on_commit_callbacks(execute=True):
        officer_client.post(url("refuse", correction), {"reason": "无法核实您的身份。"})
    correction.refresh_from_db()
    assert correction.status == "rejected" and correction.response == "无法核实您的身份。"
    assert AuditLog.objects.get(action="privacy.request_refused").changes == {"reason": "无法核实您的身份。"}
    assert "无法核实您的身份。" in mail.outbox[0].body


def test_a_closed_request_cannot_be_acted_on_again(officer_client, correction):
    queue.refuse_request(correction.pk, reason="no")
    for name in ("complete", "extend", "refuse"):
        response = officer_client.post(url(name, correction), {"reason": "again", "note": ""}, follow=True)
        assert "cannot be acted on again" in response.content.decode()
    response = officer_client.post(url("assign", correction), {"assignee": "me"}, follow=True)
    assert "cannot be acted on again" in response.content.decode()
    correction.refresh_from_db()
    assert correction.response == "no" and correction.assignee is None


def test_a_refused_deletion_is_not_erased(shopper):
    deletion = make_request(shopper, kind="deletion")
    queue.refuse_request(deletion.pk, reason="订单纠纷处理中，依法保留。")
    assert erase_member_data(deletion.pk) is False
    shopper.refresh_from_db()
    assert shopper.status == Member.Status.ACTIVE and shopper.phone


# --- What the person sees ---------------------------------------------------------------


@pytest.fixture
def signed_in_shopper(account):
    client = Client()
    client.force_login(account.user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.parametrize(
    ("language", "why", "extended"),
    [
        ("en", "Why:", "Deadline extended from"),
        ("zh-hans", "原因：", "截止日期已从"),
        ("zh-hant", "原因：", "截止日期已從"),
        ("ru", "Причина:", "Срок продлён"),
    ],
)
def test_the_person_sees_the_extension_and_the_refusal_in_their_language(
    signed_in_shopper, shopper, language, why, extended
):
    extended_request = make_request(shopper, kind="access", jurisdiction="RU")
    queue.extend_request(extended_request.pk, reason="REASON-EXT")
    refused = make_request(shopper)
    queue.refuse_request(refused.pk, reason="REASON-REFUSED")
    signed_in_shopper.cookies["django_language"] = language
    page = signed_in_shopper.get("/privacy/data/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    with translation.override(language):
        assert translation.gettext("Why:") == why
    assert extended in page and why in page
    assert "REASON-EXT" in page and "REASON-REFUSED" in page


@pytest.mark.parametrize("history", [1, 30])
def test_change_and_action_pages_stay_flat(officer_client, correction, history, django_assert_max_num_queries):
    for k in range(history):
        AuditLog.objects.create(
            actor_type="user", actor_label=f"u{k}", action="privacy.request_assigned",
            object_type="privacy.datasubjectrequest", object_id=str(correction.pk),
        )  # fmt: skip
    with django_assert_max_num_queries(9):
        page = officer_client.get(url("change", correction))
    assert page.status_code == 200 and page.content.decode().count("privacy.request_assigned") == history
    for name in ("complete", "refuse"):
        with django_assert_max_num_queries(6):
            assert officer_client.get(url(name, correction)).status_code == 200


def test_the_member_page_lists_the_persons_requests(officer_client, shopper, client):
    late = make_request(shopper, due_in_days=-1)
    page = officer_client.get(reverse("admin:members_member_change", args=[shopper.pk])).content.decode()
    assert url("change", late) in page and "⚠ Overdue" in page
    client.force_login(staff("mk2", "Marketer"))
    assert (
        url("change", late)
        not in client.get(reverse("admin:members_member_change", args=[shopper.pk])).content.decode()
    )


def test_odd_queries_are_not_errors(officer_client, correction):
    for query in ("?q=abc", f"?q={correction.pk}", "?deadline=bogus", "?brand=xyz", "?assignee=someone"):
        assert officer_client.get(QUEUE + query).status_code == 200, query
    assert officer_client.get(url("change", correction).replace(str(correction.pk), "999999")).status_code in (302, 404)
    assert officer_client.post(reverse("admin:privacy_datasubjectrequest_refuse", args=[999999])).status_code == 404


def test_the_queue_names_the_brands_and_the_days_left_and_the_page_puts_the_actions_first(officer_client, tmall):
    member = MemberFactory()
    StoreMembership.objects.create(member=member, store=tmall, store_member_id="B1")
    late = make_request(member, due_in_days=-3.5)
    soon = make_request(member, due_in_days=5.5)

    queue = officer_client.get(QUEUE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    page = officer_client.get(reverse("admin:privacy_datasubjectrequest_change", args=[soon.pk]),
                              HTTP_ACCEPT_LANGUAGE="en").content.decode()  # fmt: skip

    assert tmall.brand.name in queue
    assert re.search(r"\b[34] days late\b", queue) and re.search(r"\b[56] days left\b", queue)
    assert late.is_open
    assert page.index("Answer the request") < page.index("field-kind")  # the actions above the request's fields
    assert 'class="button dsr-refuse"' in page and 'class="button default"' in page

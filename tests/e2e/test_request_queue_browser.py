"""The data-request queue in Chromium, as a privacy officer works it: the overdue badge,
assigning to oneself, a refusal without a reason (an error) and with one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from privacy.models import DataSubjectRequest
from tests.conftest import see_every_brand
from tests.factories import MemberFactory, UserFactory

from .conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True)


def test_officer_assigns_and_refuses_a_request(page, live_server):
    officer = see_every_brand(UserFactory(username="officer-b", is_staff=True))
    officer.groups.add(Group.objects.get(name="Privacy officer"))
    colleague = UserFactory(username="colleague-b", is_staff=True)
    now = timezone.now()
    late = DataSubjectRequest.objects.create(
        member=MemberFactory(), kind="correction", details="城市写错了",
        received_at=now - dt.timedelta(days=20), due_at=now - dt.timedelta(days=5),
    )  # fmt: skip
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/admin/login/?next=/admin/privacy/datasubjectrequest/")
    page.fill("#id_username", "officer-b")
    page.fill("#id_password", "correct horse battery staple")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    assert "已逾期" in page.inner_text(".dsr-overdue")  # the badge is words, not only colour
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-request-queue.png"), full_page=True)

    page.click(f"#result_list a[href$='/{late.pk}/change/']")
    with page.expect_navigation():
        page.click("button:has-text('分配给我')")
    late.refresh_from_db()
    assert late.assignee_id == officer.pk and late.status == "in_progress"
    page.select_option("#id_assignee", str(colleague.pk))
    with page.expect_navigation():
        page.click("button:has-text('分配')>> nth=1")
    late.refresh_from_db()
    assert late.assignee_id == colleague.pk

    page.click("text=拒绝…")
    with page.expect_navigation():
        page.click("input[type=submit].default")
    assert page.locator(".errorlist").count() == 1  # no reason: stays, says why
    page.fill("#id_reason", "无法核实申请人身份。")
    with page.expect_navigation():
        page.click("input[type=submit].default")
    late.refresh_from_db()
    assert late.status == "rejected" and late.response == "无法核实申请人身份。"
    assert page.locator(".messagelist .success").count() == 1
    page.screenshot(path=str(ARTIFACTS / "admin-request-refused.png"), full_page=True)

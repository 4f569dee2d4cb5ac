"""The admin's task pages (onboarding a brand, recording an offline request) share one
layout: breadcrumbs back to the list, what the task does, the form and its translated
submit button."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "crumb", "intro", "submit"),
    [
        (reverse("members-brand-onboard"), "品牌", "创建品牌", "创建品牌"),
        (reverse("admin:privacy_datasubjectrequest_offline"), "个人信息权利请求", "电话", "登记申请"),
    ],
)
def test_a_task_page_has_its_crumbs_intro_form_and_submit(client, superuser, url, crumb, intro, submit):
    client.force_login(superuser)
    page = client.get(url).content.decode()

    crumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S).group(1)
    assert crumb in crumbs
    assert intro in re.search(r'<div id="content-main">\s*<p>(.*?)</p>', page, re.S).group(1)
    assert re.search(rf'<input type="submit" class="default" value="{submit}">', page)

"""A brand ready for its first import in one step: ``create_brand`` and the admin's
"Onboard a brand" page, then the brand page's go-live checklist."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from cdp.admin_scope import staff_brand_ids
from cdp.models import AuditLog
from consent.models import Notice, Purpose
from members.models import Brand, Store
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_create_brand_makes_stores_purposes_notices_in_four_languages_and_staff():
    marketer = UserFactory(username="li.na", is_staff=True)
    out = io.StringIO()
    call_command(
        "create_brand", "--code", "jade", "--name", "玉兰", "--store", "jade-tmall,玉兰天猫旗舰店,tmall",
        "--store", "jade-sh,上海专柜,pos,上海", "--staff", "li.na:Marketer", stdout=out,
    )  # fmt: skip

    brand = Brand.objects.get(code="jade")
    assert sorted(Store.objects.filter(brand=brand).values_list("code", "platform", "city")) == [
        ("jade-sh", "pos", "上海"), ("jade-tmall", "tmall", ""),
    ]  # fmt: skip
    codes = set(Purpose.objects.filter(brand=brand).values_list("code", flat=True))
    assert codes == {"membership", "marketing", "personalization", "analytics", "third_party_sharing"}
    sharing = Purpose.objects.get(brand=brand, code="third_party_sharing")
    assert sharing.separate_consent and sharing.is_sale_or_sharing  # what a GPC signal opts out of
    assert not Purpose.objects.filter(brand=brand, is_sale_or_sharing=True).exclude(pk=sharing.pk).exists()
    notices = Notice.objects.filter(brand=brand)
    assert notices.count() == 6 * 4  # the agreement and five purposes, in four languages
    assert set(notices.values_list("locale", flat=True)) == {"zh-hans", "zh-hant", "en", "ru"}
    agreement = notices.get(kind="member_agreement", locale="en")
    assert "玉兰" in agreement.body and "{brand}" not in agreement.body
    assert staff_brand_ids(marketer) == frozenset([brand.pk])
    assert marketer.groups.filter(name="Marketer").exists()
    assert AuditLog.objects.filter(action="brand.onboarded").count() == 1
    assert "6 notices" not in out.getvalue() and "24 notices in 4 languages" in out.getvalue()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--store", "x,y,nowhere"], "not a platform"),
        (["--store", "lotus-tmall,again,tmall"], r"code\(s\) taken: lotus-tmall"),
        (["--store", "ok,ok,tmall", "--staff", "ghost:Marketer"], "active staff user .ghost."),
        (["--store", "ok,ok,tmall", "--staff", "li.na:Boss"], "not a role"),
    ],
)
def test_create_brand_refuses_what_it_cannot_do_and_writes_nothing(tmall, extra, message):
    UserFactory(username="li.na", is_staff=True)
    with pytest.raises(CommandError, match=message):
        call_command("create_brand", "--code", "jade", "--name", "玉兰", *extra, stdout=io.StringIO())
    assert not Brand.objects.filter(code="jade").exists()
    assert not Store.objects.filter(code="ok").exists()


def test_onboarding_page_then_the_checklist_shows_what_is_left(client, superuser):
    officer = UserFactory(username="wang.fang", is_staff=True)
    client.force_login(superuser)
    form = client.get(reverse("members-brand-onboard"))
    assert form.status_code == 200
    response = client.post(
        reverse("members-brand-onboard"),
        {"code": "jade", "name": "玉兰", "jurisdiction": "CN", "stores": "jade-tmall,玉兰天猫旗舰店,tmall",
         "privacy_officers": [officer.pk]},
        follow=True, HTTP_ACCEPT_LANGUAGE="en",
    )  # fmt: skip

    brand = Brand.objects.get(code="jade")
    assert response.redirect_chain[-1][0] == reverse("admin:members_brand_change", args=[brand.pk])
    page = response.content.decode()
    assert "is set up" in page
    assert officer.groups.filter(name=Group.objects.get(name="Privacy officer").name).exists()
    # Stores, staff and notices are done; the first import, an API key and a receiver are not.
    steps = {
        label: mark
        for mark, label in re.findall(r'<li><span aria-hidden="true">(.)</span> <span class="visually-hidden">[^<]+'
                                      r'</span> <a href="[^"]+">([^<]+)</a></li>', page)
    }  # fmt: skip
    assert steps == {
        "Stores set up": "✓", "Staff assigned": "✓", "Notices published in the four languages": "✓",
        "An API key issued": "✗", "First member file imported": "✗", "A webhook or consent file set up": "✗",
    }  # fmt: skip


def test_the_onboarding_page_is_for_staff_who_see_every_brand(client, brand):
    scoped_staff = UserFactory(username="scoped", is_staff=True)
    from django.contrib.auth.models import Permission

    scoped_staff.user_permissions.set(Permission.objects.filter(codename="add_brand"))
    brand.staff.add(scoped_staff)
    client.force_login(scoped_staff)
    assert client.get(reverse("members-brand-onboard")).status_code == 403
    bad = client.post(reverse("members-brand-onboard"), {"code": "x"})
    assert bad.status_code == 403


def test_a_bad_store_line_is_shown_on_the_form(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("members-brand-onboard"),
        {"code": "jade", "name": "玉兰", "jurisdiction": "CN", "stores": "only-a-code"},
    )
    assert response.status_code == 400
    assert "stores" in response.context["form"].errors
    assert not Brand.objects.filter(code="jade").exists()


def test_the_onboarding_roles_are_the_role_groups_insights_defines():
    # consent sits below insights and cannot import its names: the two lists must agree.
    from consent.onboarding import ROLES
    from insights import roles

    assert set(ROLES) == set(roles.ROLES)

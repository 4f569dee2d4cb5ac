"""The re-consent rate per notice version on the dashboard (issue 25 item 9): per notice
whose newest version replaced an older one, the people whose standing consent rests on
each version and their share, scoped to the staff member's brands, with a link to "who
consented under an earlier version"; as ``consent.reconsent.by_version`` counts them."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from consent import reconsent
from consent import services as consent_services
from consent.models import Notice
from insights import queries, services
from tests.factories import UserFactory

from .conftest import PERIOD, STORE_PROOF, at

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

DASHBOARD = "/admin/insights/dashboard/"


def grant(world, who, notice, *, channel="sms", action="granted", brand=None, day=10, **kw):
    purpose = world.rose_marketing if brand == "rose" else world.marketing
    consent_services.record_consent(
        member=world.people[who], brand=purpose.brand, purpose=purpose, channel=channel, action=action,
        source_type="store", occurred_at=at(2026, 1, day), notice=notice, **kw,
    )  # fmt: skip


def publish(brand, purpose, locale="zh-hans", kind=Notice.Kind.PURPOSE_NOTICE):
    return consent_services.publish_notice(
        brand=brand, kind=kind, purpose=purpose, locale=locale, title="告知", body=f"new {locale}"
    )


@pytest.fixture
def versions(world):
    """Lotus's marketing notice, in Chinese and English: A (SMS) and B consented under v1;
    then v2 came out in both, and C, D (in English) and A (e-mail, a double opt-in)
    consented under it. Of the 4 people on the notice, 2 stand on v1 (50%) and 3 on v2
    (75%): A, on both, counts once. Rose's notice has a v2 as well, and F on v1; lotus's
    privacy policy has only v1."""
    v1 = Notice.objects.get(brand=world.lotus, purpose=world.marketing)
    publish(world.lotus, world.marketing, "en")
    grant(world, "A", v1)
    grant(world, "B", v1)
    v2 = publish(world.lotus, world.marketing)
    v2_en = publish(world.lotus, world.marketing, "en")
    assert v2.version == v2_en.version == 2
    grant(world, "C", v2)
    grant(world, "D", v2_en)
    grant(world, "A", v2, channel="email", action="requested", day=11)
    grant(world, "A", v2, channel="email", action="confirmed", day=12, confirmation=STORE_PROOF)
    publish(world.lotus, None, kind=Notice.Kind.PRIVACY_POLICY)
    rose_v1 = Notice.objects.get(brand=world.rose, purpose=world.rose_marketing)
    grant(world, "F", rose_v1, brand="rose")
    rose_v2 = publish(world.rose, world.rose_marketing)
    services.refresh_figures(brand=world.lotus)
    services.refresh_figures(brand=world.rose)
    return {"v1": v1, "v2": v2, "rose_v2": rose_v2}


def officer(*, reconsent_page: bool, brands):
    user = UserFactory(username="officer", is_staff=True)
    codenames = ["view_dashboard", *(["view_consentstate", "view_notice"] if reconsent_page else [])]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    for brand in brands:
        brand.staff.add(user)
    return user


def test_rates_per_version_agree_with_the_notice_page(world, versions, django_assert_num_queries):
    with django_assert_num_queries(3):
        found = queries.reconsent_rates(world.lotus)
    [notice] = found  # the policy has one version: nothing to ask again
    assert notice.notice_id == versions["v2"].pk and notice.people == 4
    assert [(v.version, v.people, v.share) for v in notice.versions] == [(1, 2, 0.5), (2, 3, 0.75)]
    # The same figures as the notice's own re-consent page (consent.reconsent).
    assert [(v.version, v.people, v.share) for v in notice.versions] == [
        (v.version, v.people, v.share) for v in reconsent.by_version(versions["v2"])
    ]


def test_three_queries_whatever_the_number_of_notices(world, versions, django_assert_num_queries):
    for kind in (Notice.Kind.MEMBER_AGREEMENT, Notice.Kind.PRIVACY_POLICY):
        publish(world.lotus, None, kind=kind)
        publish(world.lotus, None, kind=kind)
    with django_assert_num_queries(3):
        assert len(queries.reconsent_rates(world.lotus)) == 3


def test_dashboard_shows_the_rates_and_links_to_who_to_ask_again(
    client, world, versions, django_assert_max_num_queries
):
    client.force_login(officer(reconsent_page=True, brands=[world.lotus]))
    with django_assert_max_num_queries(16):  # the dashboard's bound: the rates are stored figures
        response = client.get(DASHBOARD, {"brand": world.lotus.pk, **PERIOD})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="chart-reconsent"' in html
    assert "Lowest re-consent rate now: Purpose notice · marketing营销, 75.0% of 4 people" in html
    link = reverse("admin:consent_notice_reconsent", args=[versions["v2"].pk])
    assert f'href="{link}"' in html
    assert reverse("admin:consent_notice_reconsent", args=[versions["rose_v2"].pk]) not in html
    # The link leads to the page of who to ask again, which the officer may open.
    assert client.get(link).status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(
        client.get("/admin/insights/dashboard/reconsent.csv", {"brand": world.lotus.pk, **PERIOD}).streaming_content
    ).decode("utf-8-sig"))))  # fmt: skip
    assert rows[1:] == [
        ["Purpose notice · marketing营销", "v1", "2", "50.0"],
        ["Purpose notice · marketing营销", "v2", "3", "75.0"],
    ]


def test_only_the_staff_members_brands(client, world, versions):
    client.force_login(officer(reconsent_page=True, brands=[world.lotus]))
    assert client.get(DASHBOARD, {"brand": world.rose.pk, **PERIOD}).status_code == 400
    assert client.get("/admin/insights/dashboard/reconsent.csv", {"brand": world.rose.pk, **PERIOD}).status_code == 400


def test_no_link_for_staff_who_may_not_open_the_page(client, world, versions):
    client.force_login(officer(reconsent_page=False, brands=[world.lotus, world.rose]))
    html = client.get(DASHBOARD, {"brand": world.rose.pk, **PERIOD}).content.decode()
    assert 'id="chart-reconsent"' in html
    assert "/reconsent/" not in html
    assert "0.0% of 1 person consented under version 2" in html  # F stands on rose's v1


def test_without_a_second_version_the_chart_says_so(client, world):
    services.refresh_figures(brand=world.lotus)
    client.force_login(officer(reconsent_page=True, brands=[world.lotus]))
    html = client.get(DASHBOARD, {"brand": world.lotus.pk, **PERIOD}).content.decode()
    assert "No notice has a newer version yet, so nobody needs to be asked again." in html

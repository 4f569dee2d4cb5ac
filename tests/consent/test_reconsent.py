"""Re-consent after a notice changes (issue 25 item 9): per version of a notice, the people
whose standing consent rests on it and their share; those on older versions to ask again."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from consent import reconsent, services
from consent.models import Notice, Purpose
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def notices(brand):
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    now = timezone.now()
    v1 = services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                                 title="营销告知", body="v1", published_at=now - dt.timedelta(days=100))  # fmt: skip
    v1_en = services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="en",
                                    title="Marketing", body="v1", published_at=now - dt.timedelta(days=100))  # fmt: skip
    v2 = services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                                 title="营销告知", body="v2: 新增微信渠道", published_at=now - dt.timedelta(days=10))  # fmt: skip
    return purpose, v1, v1_en, v2


def _grant(purpose, notice, days_ago, action="granted"):
    member = MemberFactory()
    services.record_consent(member=member, brand=purpose.brand, purpose=purpose, channel="sms", action=action,
                            source_type="store", notice=notice,
                            occurred_at=timezone.now() - dt.timedelta(days=days_ago))  # fmt: skip
    return member


def test_people_by_version_their_share_and_those_to_ask_again(notices, client, superuser):
    purpose, v1, v1_en, v2 = notices
    old = [_grant(purpose, v1, 50), _grant(purpose, v1_en, 40)]  # v1 in two languages
    [_grant(purpose, v2, 5) for _ in range(2)]  # two on the new version
    gone = _grant(purpose, v1, 60)
    services.record_consent(member=gone, brand=purpose.brand, purpose=purpose, channel="sms", action="withdrawn",
                            source_type="store")  # fmt: skip

    rows = {row.version: (row.people, round(row.share, 2)) for row in reconsent.by_version(v2)}
    assert rows == {1: (2, 0.5), 2: (2, 0.5)}
    assert set(reconsent.standing_before(v2).values_list("member_id", flat=True)) == {m.pk for m in old}
    assert not reconsent.standing_before(v1).exists()

    client.force_login(superuser)
    page = client.get(reverse("admin:consent_notice_reconsent", args=[v2.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "2 people stand on versions before v2." in page.content.decode()
    download = client.get(reverse("admin:consent_notice_reconsent_csv", args=[v2.pk]))
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert sorted(int(r["member_id"]) for r in rows) == sorted(m.pk for m in old)
    assert {r["notice_version"] for r in rows} == {"1"}
    change = client.get(reverse("admin:consent_notice_change", args=[v2.pk])).content.decode()
    assert reverse("admin:consent_notice_reconsent", args=[v2.pk]) in change


def test_reconsent_needs_the_consent_state_permission_and_stays_in_the_staffs_brand(client, notices, marketer):
    from django.contrib.auth.models import Permission

    from tests.factories import BrandFactory, UserFactory

    _purpose, _v1, _v1_en, v2 = notices
    client.force_login(marketer)
    assert client.get(reverse("admin:consent_notice_reconsent", args=[v2.pk])).status_code == 403
    other = UserFactory(username="rose-officer", is_staff=True)
    other.user_permissions.set(Permission.objects.filter(codename__in=["view_consentstate", "view_notice"]))
    BrandFactory(code="rose").staff.add(other)
    client.force_login(other)
    assert client.get(reverse("admin:consent_notice_reconsent", args=[v2.pk])).status_code == 404

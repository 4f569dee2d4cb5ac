"""The demo data a newcomer sees after `make demo`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from consent import ledger, services
from consent.models import ConsentEvent, ConsentState, Notice
from members.models import Brand, Identity, Member, MergeEvent, Order, Store, StoreMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("seed_demo", "--members", "400", stdout=out)
    return out.getvalue()


def test_brands_stores_and_platforms(seeded):
    assert Brand.objects.count() == 2
    assert Store.objects.count() >= 8
    platforms = set(Store.objects.values_list("platform", flat=True))
    assert {"tmall", "jd", "douyin", "wechat", "xiaohongshu", "pos", "website"} <= platforms


def test_people_overlap_across_stores_and_were_unified(seeded):
    members = Member.objects.active().annotate(stores=Count("memberships"))
    multi = members.filter(stores__gte=2).count()
    assert 0.2 <= multi / members.count() <= 0.45
    assert MergeEvent.objects.exists()  # some people arrived as two members first
    kinds = set(Identity.objects.values_list("kind", flat=True))
    assert {"phone", "email", "wechat_unionid", "store_member"} <= kinds
    # Every store record is a membership, and every membership has its store identity.
    assert StoreMembership.objects.count() == Identity.objects.filter(kind="store_member").count()


def test_languages_and_names(seeded):
    locales = set(Member.objects.values_list("locale", flat=True))
    assert {"zh-hans", "zh-hant", "ru"} <= locales


def test_orders_and_every_lifecycle_stage(seeded):
    assert Order.objects.filter(member__isnull=True).exists()
    assert Order.objects.filter(member__isnull=False).exists()
    stages = set(Member.objects.active().values_list("lifecycle_stage", flat=True))
    assert stages == {"prospect", "new", "active", "loyal", "at_risk", "lapsed"}


def test_consent_is_realistic_and_verifies(seeded):
    assert Notice.objects.filter(version=2).exists() and Notice.objects.filter(version=1).exists()
    actions = set(ConsentEvent.objects.values_list("channel", "action"))
    assert {("sms", "granted"), ("sms", "withdrawn"), ("email", "requested"), ("email", "confirmed")} <= actions
    sources = set(ConsentEvent.objects.values_list("source_type", flat=True))
    assert {"store", "privacy_center", "import_job", "api_key"} <= sources
    sms = ConsentState.objects.filter(purpose__code="marketing", channel="sms", action="granted").count()
    assert 0.4 <= sms / Member.objects.active().count() <= 0.7
    ledger.create_checkpoint()
    assert ledger.verify_ledger().ok
    assert services.state_differences() == []


def test_second_run_with_if_empty_changes_nothing(seeded):
    before = Member.objects.count(), ConsentEvent.objects.count()
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "already exists" in out.getvalue()
    assert (Member.objects.count(), ConsentEvent.objects.count()) == before
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())


def test_demo_admin_only_in_debug(settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("ensure_demo_admin", stdout=StringIO())
    settings.DEBUG = True
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out)
    call_command("ensure_demo_admin", stdout=out)  # twice is fine
    assert get_user_model().objects.get(username="admin").check_password("admin")
    assert "password: admin" in out.getvalue()

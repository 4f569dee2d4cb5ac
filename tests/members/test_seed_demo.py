"""The demo data a newcomer sees after `make demo`."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Count

from consent import ledger, services, verification
from consent.models import ConsentEvent, ConsentState, Notice
from members import demo
from members.models import Brand, Identity, LifecycleStage, Member, MergeEvent, Order, Store, StoreMembership

pytestmark = pytest.mark.django_db

PLATFORMS = {"tmall", "jd", "douyin", "wechat", "xiaohongshu", "pos", "website"}


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("seed_demo", "--members", "120", stdout=out)
    return out.getvalue()


def test_brands_stores_and_platforms(seeded):
    assert Brand.objects.count() == 2
    assert Store.objects.count() >= 8
    assert set(Store.objects.values_list("platform", flat=True)) >= PLATFORMS


def test_the_demo_shopper_enters_the_privacy_center_in_a_brands_face(seeded, client):
    """The printed link opens the sign-in page with the brand's logo, name in the page's
    language and hotline; the printed address gets a code there."""
    link, email = re.search(r"privacy center: \S+(/privacy/b/[\w-]+/) .* sign in as (\S+@\S+) ", seeded).groups()
    brand = Brand.objects.get(code=link.split("/")[3])
    page = client.get(link, follow=True, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    header = page[page.index('<header class="top">') : page.index("</header>")]
    assert brand.display_name_en in header and f"/privacy/brand/{brand.code}/logo/" in header
    assert client.get(f"/privacy/brand/{brand.code}/logo/")["Content-Type"] == "image/png"
    assert brand.support_phone in page and brand.sms_signature
    assert Identity.objects.filter(kind="email", value=email, store__brand=brand).exists()


def test_people_overlap_across_stores_and_were_unified(seeded):
    members = Member.objects.active().annotate(stores=Count("memberships__store", distinct=True))
    multi = members.filter(stores__gte=2).count()
    assert 0.25 <= multi / members.count() <= 0.40
    # Some people arrived as two members first; a later record linked them.
    merges = MergeEvent.objects.select_related("absorbed")
    assert merges.exists()
    assert all(event.absorbed.status == Member.Status.MERGED for event in merges)
    kinds = set(Identity.objects.values_list("kind", flat=True))
    assert {"phone", "email", "wechat_unionid", "store_member"} <= kinds
    # Every store record is a membership, and every membership has its store identity.
    assert StoreMembership.objects.count() == Identity.objects.filter(kind="store_member").count()
    # Phones were written in several formats and still became one E.164 identity each.
    assert all(value.startswith("+") for value in Identity.objects.filter(kind="phone").values_list("value", flat=True))


def test_languages_and_names(seeded):
    locales = set(Member.objects.values_list("locale", flat=True))
    assert {"zh-hans", "zh-hant", "ru"} <= locales


def test_orders_and_every_lifecycle_stage(seeded):
    guests = Order.objects.filter(member__isnull=True).count()
    total = Order.objects.count()
    assert 0 < guests < total
    assert 0.15 <= guests / total <= 0.35
    # Merges moved orders along: none stays with a member that no longer exists as such.
    assert not Order.objects.filter(member__status=Member.Status.MERGED).exists()
    amounts = list(Order.objects.values_list("amount", flat=True))
    assert all(Decimal("30") <= amount <= Decimal("3000") for amount in amounts)
    stages = set(Member.objects.active().values_list("lifecycle_stage", flat=True))
    assert stages == set(LifecycleStage.values)


def test_consent_is_realistic_and_verifies(seeded):
    assert Notice.objects.filter(version=2).exists() and Notice.objects.filter(version=1).exists()
    actions = set(ConsentEvent.objects.values_list("channel", "action"))
    assert {("sms", "granted"), ("sms", "withdrawn"), ("email", "requested"), ("email", "confirmed")} <= actions
    sources = set(ConsentEvent.objects.values_list("source_type", flat=True))
    assert {"store", "privacy_center", "import_job", "api_key"} <= sources
    sms = ConsentState.objects.filter(purpose__code="marketing", channel="sms", action="granted").count()
    assert 0.4 <= sms / Member.objects.active().count() <= 0.7
    ledger.create_checkpoint()
    assert verification.verify_ledger().ok
    assert services.state_differences() == []


def test_second_run_with_if_empty_changes_nothing(seeded):
    def counts():
        return Member.objects.count(), Order.objects.count(), MergeEvent.objects.count(), ConsentEvent.objects.count()

    before = counts()
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "already exists" in out.getvalue()
    assert counts() == before
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())


def test_same_seed_same_people():
    def fingerprint(seed: int):
        with transaction.atomic():
            summary = demo.seed_demo(members=60, seed=seed)
            people = [(p.name, p.phone, p.email, p.stage, [r[1] for r in p.records]) for p in summary["people"]]
            amounts = sorted(Order.objects.values_list("amount", flat=True))
            transaction.set_rollback(True)
        return people, amounts

    first = fingerprint(7)
    assert fingerprint(7) == first
    assert fingerprint(8) != first


def test_demo_admin_only_in_debug(settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("ensure_demo_admin", stdout=StringIO())
    assert not get_user_model().objects.filter(username="admin").exists()
    settings.DEBUG = True
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out)
    call_command("ensure_demo_admin", stdout=out)  # twice is fine
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("admin") and admin.is_superuser and admin.email == "admin@example.com"
    assert "password: admin" in out.getvalue()


def test_the_request_queue_has_work_in_every_state(seeded):
    from privacy import queries
    from privacy.models import DataSubjectRequest

    assert "data-subject requests: 13" in seeded
    assert queries.overdue().count() == 3 and queries.due_soon().count() == 2
    assert set(DataSubjectRequest.objects.values_list("status", flat=True)) == {"received", "completed", "rejected"}
    assert DataSubjectRequest.objects.exclude(response="").count() == 3

"""⚑ Brand wall, staff side (cdp.admin_scope): a staff member of brand A, holding every
permission but ``all_brands``, tries every admin URL with the ids of brand B's objects.

The matrix: for every registered model with a brand, the list (B's objects absent), the
change, history and delete pages (GET and POST) and every custom URL of the ModelAdmin
that takes an id, filled with each of B's objects. A read is a 200 on an object page; a
write is any change to B's rows. Both must be 0. Controls: the same user sees A's objects,
and a superuser sees B's, so the matrix cannot pass by showing nothing to anyone.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cdp.admin_scope import BRAND_PATHS, EVERY, scope_of, scoped, staff_brand_ids
from members.models import Brand, Store
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OBJECTS_PER_MODEL = 2  # of brand B, tried on every URL


def _world() -> tuple[Brand, Brand]:
    """The demo's two brands, each with at least one object of every scoped model."""
    call_command("seed_demo", members=40, verbosity=0)
    lotus, northwind = Brand.objects.get(code="lotus"), Brand.objects.get(code="northwind")
    for brand in (lotus, northwind):
        _fill(brand)
    return lotus, northwind


def _fill(brand: Brand) -> None:
    from cdp.api_keys import issue_api_key
    from cdp.models import ApiKey
    from consent import services as consent_services
    from consent.models import DataUsage, Notice, Purpose
    from imports.models import ImportJob, PlatformEvent
    from imports.platform_events.connections import connect_platform
    from members.models import Member, MergeEvent, NeverMerge
    from privacy.models import PrivacyAccount
    from segments.models import ContactLog, ContactPolicy, SegmentBuild, SegmentExport
    from webhooks import services as webhook_services
    from webhooks.models import ConsentFile, ConsentFileFeed, Delivery, DeliveryAttempt

    store = Store.objects.filter(brand=brand).order_by("pk").first()
    members = list(Member.objects.filter(memberships__store__brand=brand).distinct().order_by("pk")[:2])
    purpose = Purpose.objects.filter(brand=brand, code="marketing").first()
    issue_api_key(ApiKey(name=f"{brand.code} key", brand=brand, scopes=["consent:read"]))
    consent_services.update_preferences(member=members[0], brand=brand, source_type="admin_user", max_per_week=3)
    DataUsage.objects.create(member=members[0], brand=brand, purpose=purpose, channel="sms", context_type="export")
    consent_services.add_suppression(channel="sms", value="+8613700000000", reason="complaint", brand=brand)
    consent_services.start_notice_draft(brand=brand, kind="purpose_notice", purpose=purpose)
    ImportJob.objects.create(store=store, original_name=f"{brand.code}.csv", status=ImportJob.Status.DONE)
    notice = Notice.objects.filter(brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT).first()
    connection = connect_platform(store=store, adapter="generic", secret="", notice=notice).connection
    PlatformEvent.objects.create(connection=connection, event_id=f"{brand.code}-1", kind="joined", outcome="applied",
                                 occurred_at=timezone.now(), member=members[0])  # fmt: skip
    PrivacyAccount.objects.create(user=UserFactory(username=f"{brand.code}-shopper"), member=members[0])
    NeverMerge.objects.create(member_a=members[0], member_b=members[1])
    MergeEvent.objects.create(survivor=members[0], absorbed=members[1], rule="phone", matched_value="h")
    build = SegmentBuild.objects.filter(segment__brand=brand).first()
    export = SegmentExport.objects.create(build=build, campaign=f"{brand.code} campaign")
    ContactLog.objects.create(member=members[0], brand=brand, purpose=purpose, channel="sms", export=export)
    ContactPolicy.objects.get_or_create(brand=brand, defaults={"max_per_week": 3})
    subscription, _secret = webhook_services.create_subscription(brand=brand, url="https://hooks.example.com/x",
                                                                 events=["consent.changed"])  # fmt: skip
    delivery = Delivery.objects.create(subscription=subscription, event_type="consent.changed", body="{}")
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, started_at=timezone.now(), duration_ms=5, status_code=500
    )
    feed = ConsentFileFeed.objects.create(brand=brand, name=f"{brand.code} feed", secret="s")
    ConsentFile.objects.create(feed=feed, number=1, directory="x", after_event_id=0, up_to_event_id=1)


def _brand_staff(brand: Brand):
    """Every permission there is, except seeing every brand."""
    user = UserFactory(username=f"{brand.code}-staff", is_staff=True)
    user.user_permissions.set(Permission.objects.exclude(codename="all_brands"))
    brand.staff.add(user)
    return user


def _of_brand(model, brand: Brand) -> list:
    scope = BRAND_PATHS[model._meta.label_lower]
    everyone = _Everyone()
    queryset = scoped(model._base_manager.all(), everyone)
    if callable(scope):
        return list(scope(queryset, frozenset([brand.pk])).order_by("pk")[:OBJECTS_PER_MODEL])
    lookup = "pk" if scope == "pk" else scope
    return list(queryset.filter(**{lookup: brand.pk}).distinct().order_by("pk")[:OBJECTS_PER_MODEL])


class _Everyone:
    is_authenticated = is_active = is_superuser = True


def _snapshot(obj) -> dict:
    fresh = type(obj)._base_manager.filter(pk=obj.pk).first()
    return model_to_dict(fresh) if fresh is not None else {}


def _id_urls(model_admin) -> list:
    """The ModelAdmin's own URL patterns that take ids (the stock ones and custom ones)."""
    return [p for p in model_admin.get_urls() if getattr(p, "name", None) and p.pattern.converters]


def _fill_route(pattern, obj) -> str | None:
    kwargs = {}
    for name, converter in pattern.pattern.converters.items():
        kwargs[name] = obj.pk if type(converter).__name__ == "IntConverter" else str(obj.pk)
    for name in re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern)):
        kwargs.setdefault(name, str(obj.pk))
    try:
        return reverse(f"admin:{pattern.name}", kwargs=kwargs)
    except NoReverseMatch:
        return None


def test_staff_of_one_brand_read_and_write_nothing_of_another(client):
    lotus, northwind = _world()
    staff = _brand_staff(lotus)
    client.force_login(staff)
    assert staff_brand_ids(staff) == frozenset([lotus.pk])

    tried = reads = writes = lists = 0
    controls = 0
    leaks: list[str] = []
    for model, model_admin in admin.site._registry.items():
        if scope_of(model) == EVERY:
            continue
        label = model._meta.label_lower
        theirs, ours = _of_brand(model, northwind), _of_brand(model, lotus)
        assert theirs and ours, f"the world has no {label} of both brands"
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        lists += 1
        if changelist.status_code == 200 and "cl" in changelist.context:
            shown = {obj.pk for obj in changelist.context["cl"].result_list}
            if shown & {obj.pk for obj in theirs}:
                leaks.append(f"{label}: listed")
                reads += 1
            controls += bool(shown & {obj.pk for obj in ours})
        before = {obj.pk: _snapshot(obj) for obj in theirs}
        for pattern in _id_urls(model_admin):
            for obj in theirs:
                url = _fill_route(pattern, obj)
                if url is None:
                    continue
                for method in ("get", "post"):
                    tried += 1
                    response = getattr(client, method)(url, {"post": "yes", "_save": "1"})
                    if response.status_code == 200:
                        reads += 1
                        leaks.append(f"{label}: {method.upper()} {url} answered 200")
        for obj in theirs:
            if _snapshot(obj) != before[obj.pk]:
                writes += 1
                leaks.append(f"{label} #{obj.pk}: changed")
    print(f"\nbrand wall matrix: {lists} lists, {tried} object URL requests, {reads} reads, {writes} writes")
    assert leaks == []
    assert (reads, writes) == (0, 0)
    assert tried > 150
    assert controls >= 15  # brand A's own objects are listed for its staff


def test_the_same_pages_show_brand_a_its_own_objects_and_a_superuser_both(client, superuser):
    lotus, northwind = _world()
    client.force_login(_brand_staff(lotus))
    from consent.models import ConsentEvent

    ours = ConsentEvent.objects.filter(brand=lotus).first()
    theirs = ConsentEvent.objects.filter(brand=northwind).first()
    assert client.get(reverse("admin:consent_consentevent_change", args=[ours.pk])).status_code == 200
    assert client.get(reverse("admin:consent_consentevent_receipt", args=[ours.pk])).status_code == 200
    assert client.get(reverse("admin:consent_consentevent_receipt", args=[theirs.pk])).status_code == 404
    client.force_login(superuser)
    assert client.get(reverse("admin:consent_consentevent_receipt", args=[theirs.pk])).status_code == 200


def test_choices_filters_dashboard_and_report_offer_only_the_staffs_brands(client):
    lotus, northwind = _world()
    client.force_login(_brand_staff(lotus))
    theirs = Store.objects.filter(brand=northwind).first()

    add = client.get(reverse("admin:segments_segment_add"))
    brands = list(add.context["adminform"].form.fields["brand"].queryset)
    purposes = add.context["adminform"].form.fields["purpose"].queryset
    assert brands == [lotus] and not purposes.exclude(brand=lotus).exists()
    orders = client.get(reverse("admin:members_order_changelist"))
    store_filter = next(f for f in orders.context["cl"].filter_specs if getattr(f, "field", None)
                        and f.field.name == "store")  # fmt: skip
    assert theirs.pk not in {pk for pk, _name in store_filter.lookup_choices}
    # An import into the other brand's store is refused by the form, not run.
    upload = client.post(reverse("admin:imports_importjob_import"), {"store": theirs.pk})
    assert "store" in upload.context["form"].errors
    # The dashboard and the compliance report know only brand A.
    assert client.get(reverse("insights:dashboard"), {"brand": northwind.pk, "period": "30"}).status_code == 400
    report = client.get(reverse("compliance-report"), {"brand": northwind.pk})
    assert "brand" in report.context["form"].errors
    since = (timezone.localdate() - dt.timedelta(days=10)).isoformat()
    assert client.get(reverse("compliance-report"), {"brand": lotus.pk, "since": since}).status_code == 200


def test_staff_of_no_brand_see_no_brand_data_and_group_staff_see_every_brand(client):
    lotus, northwind = _world()
    nobody = UserFactory(username="nobody", is_staff=True)
    nobody.user_permissions.set(Permission.objects.filter(codename__in=["view_member", "view_consentevent"]))
    client.force_login(nobody)
    page = client.get(reverse("admin:members_member_changelist"))
    assert page.context["cl"].result_count == 0
    group = UserFactory(username="group", is_staff=True)
    group.user_permissions.set(Permission.objects.filter(codename__in=["view_member", "all_brands"]))
    client.force_login(group)
    from members.models import Member

    assert client.get(reverse("admin:members_member_changelist")).context["cl"].result_count == Member.objects.count()


def test_a_model_registered_without_a_scope_stops_the_site():
    from django.core.exceptions import ImproperlyConfigured

    from cdp import admin_scope

    model = apps.get_model("members", "Identity")
    saved = admin_scope.BRAND_PATHS.pop("members.identity")
    try:
        with pytest.raises(ImproperlyConfigured, match="no brand scope"):
            admin_scope.scope_of(model)
    finally:
        admin_scope.BRAND_PATHS["members.identity"] = saved


def test_a_person_both_brands_know_shows_each_brands_staff_only_its_own_records(client):
    from consent import services as consent_services
    from consent.models import Purpose
    from members.identities import store_member_value
    from members.models import Identity, Member, Order, StoreMembership

    lotus, northwind = _world()
    ours = Store.objects.filter(brand=lotus).order_by("pk").first()
    theirs = Store.objects.filter(brand=northwind).order_by("pk").first()
    person = Member.objects.create(name="王芳", phone="+8613911112222")
    for store, member_id in ((ours, "LOTUS-77"), (theirs, "NORTH-88")):
        StoreMembership.objects.create(member=person, store=store, store_member_id=member_id)
        Identity.objects.create(member=person, kind="store_member", value=store_member_value(store.pk, member_id),
                                store=store)  # fmt: skip
        Order.objects.create(store=store, external_id=f"{member_id}-O1", member=person, amount=10,
                             placed_at=timezone.now())  # fmt: skip
        brand = store.brand
        consent_services.record_consent(member=person, brand=brand, purpose=Purpose.objects.get(brand=brand,
                                        code="personalization"), action="granted", source_type="store", store=store)  # fmt: skip
    client.force_login(_brand_staff(lotus))

    page = client.get(reverse("admin:members_member_change", args=[person.pk])).content.decode()

    assert "LOTUS-77" in page and "LOTUS-77-O1" in page
    assert "NORTH-88" not in page and "NORTH-88-O1" not in page
    assert theirs.name not in page and northwind.name not in page


def test_brand_staff_see_a_person_as_their_stores_gave_them_never_the_merged_record(
    client, superuser, django_assert_max_num_queries
):
    """The merged record mixes what both brands collected: its name, city and phone here came
    from the other brand. Brand-A staff see what A's store gave, in the list, on the member's
    page, in search and wherever the member is named (the ledger); a superuser sees both."""
    from consent import services as consent_services
    from consent.models import Purpose
    from members.identities import store_member_value
    from members.models import Identity, Member, StoreMembership

    lotus, northwind = _world()
    ours = Store.objects.filter(brand=lotus).order_by("pk").first()
    theirs = Store.objects.filter(brand=northwind).order_by("pk").first()
    person = Member.objects.create(name="北风王女士", city="哈尔滨", phone="+8613911112222")
    for store, number, name, city in ((ours, "LOTUS-77", "王芳", "上海"), (theirs, "NORTH-88", "北风王女士", "哈尔滨")):
        StoreMembership.objects.create(
            member=person,
            store=store,
            store_member_id=number,
            profile={"name": name, "city": city},
            profile_observed_at=timezone.now(),
        )
        Identity.objects.create(member=person, kind="store_member", value=store_member_value(store.pk, number),
                                store=store)  # fmt: skip
    Identity.objects.create(member=person, kind="phone", value="+8613911112222", store=theirs)
    purpose = Purpose.objects.get(brand=lotus, code="personalization")
    consent_services.record_consent(member=person, brand=lotus, purpose=purpose, action="granted",
                                    source_type="store", store=ours)  # fmt: skip
    client.force_login(_brand_staff(lotus))
    changelist = reverse("admin:members_member_changelist")

    with django_assert_max_num_queries(20):
        listed = client.get(changelist).content.decode()
    assert "王芳" in listed and "上海" in listed
    assert "北风王女士" not in listed and "哈尔滨" not in listed
    page = client.get(reverse("admin:members_member_change", args=[person.pk])).content.decode()
    assert "王芳" in page and "上海" in page
    assert "北风王女士" not in page and "哈尔滨" not in page and "13911112222" not in page
    ledger = client.get(reverse("admin:consent_consentevent_changelist")).content.decode()
    assert f"#{person.pk}" in ledger and "北风王女士" not in ledger
    assert "王芳" in client.get(changelist, {"q": "王芳"}).content.decode()
    for theirs_only in ("北风王女士", "13911112222", "NORTH-88"):  # what only the other brand holds
        assert (
            f'href="/admin/members/member/{person.pk}/change/'
            not in client.get(changelist, {"q": theirs_only}).content.decode()
        ), theirs_only
    assert (
        f'href="/admin/members/member/{person.pk}/change/' in client.get(changelist, {"q": "LOTUS-77"}).content.decode()
    )

    from privacy import rights

    request = rights.record_access_request(member=person, account=None)
    Identity.objects.create(member=person, kind="phone", value="+8613800001111", store=ours)
    officer_page = client.get(reverse("admin:privacy_datasubjectrequest_change", args=[request.pk])).content.decode()
    # The phone lotus holds (shown to this officer, who may see contact points, and audited);
    # not the merged record's, which northwind gave.
    assert "+8613800001111" in officer_page and "13911112222" not in officer_page

    client.force_login(superuser)
    assert "北风王女士" in client.get(reverse("admin:members_member_change", args=[person.pk])).content.decode()


def test_the_member_page_shows_ids_as_the_store_does_and_orders_in_local_time(client, superuser):
    from members.identities import store_member_value
    from members.models import Identity, Member, Order, StoreMembership

    lotus, _northwind = _world()
    store = Store.objects.filter(brand=lotus).order_by("pk").first()
    person = Member.objects.create(name="张伟")
    Identity.objects.create(member=person, kind="store_member", value=store_member_value(store.pk, "POS-9001"),
                            store=store)  # fmt: skip
    StoreMembership.objects.create(member=person, store=store, store_member_id="POS-9001")
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    Order.objects.create(store=store, external_id="O-1", member=person, amount=5,
                         placed_at=dt.datetime(2026, 11, 10, 23, 30, tzinfo=dt.UTC))  # fmt: skip
    client.force_login(superuser)

    page = client.get(reverse("admin:members_member_change", args=[person.pk])).content.decode()

    assert f"{store.pk}:POS-9001" not in page and "POS-9001" in page
    assert "2026-11-11 07:30" in page and "2026-11-10 23:30" not in page


def test_the_member_page_sums_up_consent_with_source_and_a_receipt_per_choice(client, superuser):
    from consent.models import ConsentState

    lotus, _northwind = _world()
    state = ConsentState.objects.filter(brand=lotus).select_related("event__store").first()
    client.force_login(superuser)

    page = client.get(reverse("admin:members_member_change", args=[state.member_id]),
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()  # fmt: skip

    assert reverse("admin:consent_consentevent_receipt", args=[state.event_id]) in page
    if state.event.store is not None:
        assert state.event.store.name in page

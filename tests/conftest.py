"""Shared fixtures: a few named actors and a brand with stores."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission

from .factories import BrandFactory, StoreFactory, UserFactory


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
    has_redis = bool(os.environ.get("REDIS_URL"))
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…"))
        if "redis" in item.keywords and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://…"))


@pytest.fixture(autouse=True)
def _ledger_triggers_on_postgres(request: pytest.FixtureRequest, django_db_blocker):
    """The consent ledger's PostgreSQL trigger refuses TRUNCATE, and so refuses the flush
    that ends a transactional test. Skip ordinary triggers for that flush only (replica
    mode, superuser), and make sure every test starts with triggers on again."""
    if not settings.DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
        yield
        return
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        yield
        return
    transactional = "transactional_db" in names or bool(
        marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
    yield
    if transactional:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")


@pytest.fixture(autouse=True)
def _replica_only_when_asked(request: pytest.FixtureRequest):
    """With DATABASE_REPLICA_URLS set (CI), reads that opt in to a replica (cdp.db_router)
    read it only in tests that ask for it (``django_db(databases=[..., "replica"])``,
    tests/cdp/test_read_replicas.py); elsewhere they read the primary, as Django's test
    case allows that connection only, and a real replica lags a little behind. So do the
    celery workers such a test starts (tests/workers.py passes the environment on)."""
    from cdp import db_router

    marker = request.node.get_closest_marker("django_db")
    asked = marker.kwargs.get("databases") if marker else None
    if not settings.DATABASE_REPLICAS or asked == "__all__" or set(asked or ()) & set(settings.DATABASE_REPLICAS):
        yield
    else:
        from django.test import override_settings

        urls = os.environ.pop("DATABASE_REPLICA_URLS", None)
        try:
            with override_settings(DATABASE_REPLICAS=[]):
                yield
        finally:
            if urls is not None:
                os.environ["DATABASE_REPLICA_URLS"] = urls
    db_router._down_until.clear()


@pytest.fixture
def brand(db):
    return BrandFactory(code="lotus", name="莲花美妆")


@pytest.fixture
def tmall(brand):
    return StoreFactory(brand=brand, code="lotus-tmall", name="莲花天猫旗舰店", platform="tmall")


@pytest.fixture
def jd(brand):
    return StoreFactory(brand=brand, code="lotus-jd", name="莲花京东自营", platform="jd")


@pytest.fixture
def wechat(brand):
    return StoreFactory(brand=brand, code="lotus-wechat", name="莲花小程序", platform="wechat")


@pytest.fixture
def lotus_officer(client, brand):
    """The client signed in as a Privacy officer of brand lotus only, in English."""
    from django.contrib.auth.models import Group

    user = UserFactory(username="officer-lotus", is_staff=True)
    user.groups.add(Group.objects.get(name="Privacy officer"))
    brand.staff.add(user)
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


@pytest.fixture
def lotus_shopper(tmall):
    """A member with a phone identity and a Tmall membership (member id P1)."""
    from members.models import Identity, StoreMembership

    from .factories import MemberFactory

    member = MemberFactory(phone="+8613800138000")
    Identity.objects.create(member=member, kind="phone", value=member.phone)
    StoreMembership.objects.create(member=member, store=tmall, store_member_id="P1")
    return member


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def _staff_with(username: str, codenames: list[str], *, brands=None):
    """Staff with these permissions. Without ``brands`` they are group staff who see every
    brand (``all_brands``); with ``brands`` they belong to those brands only
    (cdp.admin_scope, tests/cdp/test_admin_brand_wall.py)."""
    user = UserFactory(username=username, is_staff=True)
    if brands is None:
        codenames = [*codenames, "all_brands"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    for brand in brands or []:
        brand.staff.add(user)
    return user


def see_every_brand(user):
    """Make ``user`` group staff: they see every brand (``members.all_brands``), as staff
    did before brand scoping; the scoping itself is tested in test_admin_brand_wall.py."""
    user.user_permissions.add(Permission.objects.get(codename="all_brands"))
    return user


MEMBER_PERMS = ["view_member", "change_member", "view_order", "view_mergeevent", "view_store", "view_brand"]


@pytest.fixture
def marketer(db):
    """Staff who works with members but may not see full phone numbers or e-mails."""
    return _staff_with("marketer", MEMBER_PERMS)


@pytest.fixture
def privacy_officer(db):
    """Staff who may see full contact points."""
    return _staff_with("officer", [*MEMBER_PERMS, "view_pii", "view_auditlog"])


@pytest.fixture
def real_celery():
    """Send tasks to the broker for the duration of a test, not in-process (tests/workers.py
    starts the worker that runs them)."""
    from cdp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _english_outside_requests():
    """Every test starts with English active, whatever the test before it (or a request it
    made) left active in this thread: messages built outside a request otherwise depend on
    test order. Tests about other languages activate or request them."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Every test starts with an empty cache: ids repeat between tests (SQLite reuses
    them after a rollback), so a key a test left behind could answer the next one."""
    from django.core.cache import cache

    from privacy.face import forget_hosts
    from webhooks.services import forget_subscribers

    cache.clear()
    forget_subscribers()  # the per-process memo of which brands have subscribers
    forget_hosts()  # and of which hosts brands own


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path_factory):
    """Uploaded files (logos, scans) of a test go to a temporary folder, never to the
    checkout's media/."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))

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
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def _staff_with(username: str, codenames: list[str]):
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
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

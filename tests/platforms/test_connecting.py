"""Connecting a store's platform: the command and the admin pages."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cdp.models import AuditLog
from consent.models import Purpose
from imports.models import PlatformConnection, PlatformEvent

from .conftest import SECRET, generic_push, tmall_push
from .test_platform_events import JOIN, _join_content

pytestmark = pytest.mark.django_db


def test_connect_platform_makes_the_membership_purpose_and_a_secret_for_generic_pushes(client, brand, agreement):
    from tests.factories import StoreFactory

    StoreFactory(brand=brand, code="lotus-xhs", name="莲花小红书店", platform="xiaohongshu")
    out = io.StringIO()
    call_command("connect_platform", "--store", "lotus-xhs", stdout=out)

    connection = PlatformConnection.objects.get(store__code="lotus-xhs")
    assert connection.adapter == "generic" and connection.secret.startswith("whsec_")
    assert out.getvalue().strip().splitlines()[-1] == connection.secret
    assert connection.agreement_purpose == Purpose.objects.get(brand=brand, code="membership")
    assert connection.agreement_notice == agreement
    assert AuditLog.objects.filter(action="platform.connected").count() == 1
    message = {"type": "membership.joined", "occurred_at": "2026-12-01T10:00:00+08:00", "member": {"member_id": "X1"}}
    assert generic_push(client, message, secret=connection.secret).status_code == 200


def test_connect_platform_refuses_what_it_cannot_do(tmall, brand):
    with pytest.raises(CommandError, match="No store"):
        call_command("connect_platform", "--store", "nope")
    with pytest.raises(CommandError, match="Give the secret"):
        call_command("connect_platform", "--store", "lotus-tmall")
    with pytest.raises(CommandError, match="no membership agreement"):
        call_command("connect_platform", "--store", "lotus-tmall", "--secret", "s")
    assert not PlatformConnection.objects.exists()


def test_connect_platform_with_the_tmall_secret_lets_tmall_push(client, tmall, agreement):
    call_command(
        "connect_platform", "--store", "lotus-tmall", "--secret", SECRET, "--app-id", "app-1", stdout=io.StringIO()
    )

    assert tmall_push(client, JOIN, _join_content()).status_code == 200


def test_a_superuser_connects_a_store_in_the_admin_and_sees_its_events(
    client, superuser, tmall, membership_purpose, agreement, django_assert_max_num_queries
):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:imports_platformconnection_add"),
        {"store": tmall.pk, "adapter": "tmall", "app_id": "app-1", "new_secret": SECRET,
         "agreement_purpose": membership_purpose.pk, "agreement_notice": agreement.pk, "is_active": "on"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    connection = PlatformConnection.objects.get()
    assert connection.secret == SECRET
    assert (
        SECRET
        not in client.get(reverse("admin:imports_platformconnection_change", args=[connection.pk])).content.decode()
    )

    for n in range(3):
        tmall_push(client, JOIN, _join_content(omid=f"OM-{n}"), msg_id=f"m-{n}")
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:imports_platformevent_changelist"))
    assert page.status_code == 200 and page.content.decode().count("membership agreement v") == 3
    assert PlatformEvent.objects.count() == 3


def test_the_admin_refuses_a_notice_of_another_purpose(client, superuser, tmall, membership_purpose, marketing):
    from consent.models import Notice

    client.force_login(superuser)
    marketing_notice = Notice.objects.get(purpose=marketing)
    response = client.post(
        reverse("admin:imports_platformconnection_add"),
        {"store": tmall.pk, "adapter": "tmall", "new_secret": SECRET, "agreement_purpose": membership_purpose.pk,
         "agreement_notice": marketing_notice.pk, "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "agreement_notice" in response.context["adminform"].form.errors
    assert not PlatformConnection.objects.exists()


def test_changing_a_connection_in_the_admin_keeps_its_secret_unless_the_platform_changes(
    client, superuser, tmall, membership_purpose, agreement
):
    call_command("connect_platform", "--store", "lotus-tmall", "--secret", SECRET, "--app-id", "app-1",
                 stdout=io.StringIO())  # fmt: skip
    connection = PlatformConnection.objects.get()
    client.force_login(superuser)
    url = reverse("admin:imports_platformconnection_change", args=[connection.pk])
    fields = {"adapter": "tmall", "app_id": "app-2", "agreement_purpose": membership_purpose.pk,
              "agreement_notice": agreement.pk}  # fmt: skip

    kept = client.post(url, fields)  # no new secret, no "is_active": switched off
    moved = client.post(url, {**fields, "adapter": "douyin"})  # another platform needs its own secret

    connection.refresh_from_db()
    assert kept.status_code == 302 and moved.status_code == 200
    assert "new_secret" in moved.context["adminform"].form.errors
    assert (connection.secret, connection.app_id, connection.is_active) == (SECRET, "app-2", False)
    changes = AuditLog.objects.filter(action="platform.connected").order_by("pk").last().changes
    assert changes["secret_changed"] is False and changes["active"] is False

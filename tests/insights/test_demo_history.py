"""The demo's dashboard history: a year of monthly snapshots (seed_demo adds the requests), so the
dashboard of a fresh `make demo` has every figure filled."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db.models import F

from insights.models import LifecycleCount, LifecycleSnapshot
from members.models import Brand
from privacy.models import DataSubjectRequest

pytestmark = pytest.mark.django_db


def test_seed_dashboard_history_after_seed_demo(client, superuser):
    with pytest.raises(CommandError, match="seed_demo first"):
        call_command("seed_dashboard_history", stdout=StringIO())
    call_command("seed_demo", "--members", "120", stdout=StringIO())
    out = StringIO()
    call_command("seed_dashboard_history", stdout=out)
    assert "12 lifecycle snapshots" in out.getvalue()
    assert LifecycleSnapshot.objects.count() == 12
    assert DataSubjectRequest.objects.filter(status__in=["received", "in_progress"]).exists()
    # Months after the first record people moving between stages.
    assert LifecycleCount.objects.exclude(from_stage="").exclude(from_stage=F("to_stage")).exists()
    call_command("seed_dashboard_history", "--if-empty", stdout=StringIO())
    assert LifecycleSnapshot.objects.count() == 12
    with pytest.raises(CommandError, match="already exist"):
        call_command("seed_dashboard_history", stdout=StringIO())

    cache.clear()
    client.force_login(superuser)
    brand = Brand.objects.order_by("name").first()
    html = client.get("/admin/", {"brand": brand.pk, "period": "365"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No data for this brand and period." not in html
    assert "No moves between stages recorded in the period." not in html

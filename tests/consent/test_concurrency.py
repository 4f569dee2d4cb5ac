"""50 concurrent writers on one member and purpose, on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from consent import services, verification
from consent.models import ConsentEvent, ConsentState, Notice, Purpose
from tests.factories import BrandFactory, MemberFactory
from tests.members.test_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_writers_one_member_shuffled_occurred_at():
    brand = BrandFactory(code="conc-consent")
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="M", channels=["sms"], is_marketing=True)
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
    )
    member = MemberFactory()
    base = timezone.now() - dt.timedelta(hours=1)
    minutes = list(range(50))
    random.Random(7).shuffle(minutes)

    def writer(minute: int):
        def job():
            return services.record_consent(
                member=member,
                brand=brand,
                purpose="marketing",
                channel="sms",
                action="granted" if minute % 2 else "withdrawn",
                source_type="api_key",
                occurred_at=base + dt.timedelta(minutes=minute),
                external_id=f"evt-{minute}",
            )

        return job

    run_together([writer(m) for m in minutes])

    assert ConsentEvent.objects.filter(member=member).count() == 50
    assert sorted(ConsentEvent.objects.values_list("seq", flat=True)) == list(range(1, 51))
    state = ConsentState.objects.get(member=member)
    assert state.occurred_at == base + dt.timedelta(minutes=49)
    assert state.action == "granted"  # minute 49 is odd
    assert verification.verify_ledger().ok
    assert services.state_differences() == []


def test_same_external_id_from_many_writers_is_stored_once():
    brand = BrandFactory(code="conc-idem")
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="M", channels=["sms"])
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
    )
    members = [MemberFactory() for _ in range(4)]

    def writer(i: int):
        return lambda: services.record_consent(
            member=members[i % 4],
            brand=brand,
            purpose="marketing",
            channel="sms",
            action="granted",
            source_type="api_key",
            external_id="same-event",
        )

    results = run_together([writer(i) for i in range(8)])
    assert ConsentEvent.objects.count() == 1
    assert sum(r.created for r in results) == 1

"""``record_consents`` / ``ledger.append_many``: a batch leaves exactly the ledger and the
projection that recording the events one by one leaves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import services
from consent.models import ConsentEvent, ConsentState
from consent.verification import verify_ledger
from tests.factories import make_members

pytestmark = pytest.mark.django_db


def at(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def test_batch_chains_and_folds_like_single_appends(brand, tmall, marketing):
    a, b, c = make_members(tmall, 3)
    # Existing chains for a and b, none for c.
    services.record_consent(member=a, brand=brand, purpose=marketing, channel="sms", action="granted",
                            source_type="store", occurred_at=at(5))  # fmt: skip
    services.record_consent(member=b, brand=brand, purpose=marketing, channel="sms", action="withdrawn",
                            source_type="store", occurred_at=at(1))  # fmt: skip
    items = [
        services.ConsentInput(member=a, purpose=marketing, channel="sms", action="withdrawn", occurred_at=at(3),
                              external_id="x1"),
        services.ConsentInput(member=a, purpose=marketing, channel="sms", action="granted", occurred_at=at(4),
                              external_id="x2"),  # older than x1: ledger only
        services.ConsentInput(member=b, purpose=marketing, channel="sms", action="granted", occurred_at=at(2),
                              external_id="x3"),  # older than b's state: ledger only
        services.ConsentInput(member=c, purpose=marketing, channel="sms", action="granted", occurred_at=at(2),
                              external_id="x4"),
        services.ConsentInput(member=c, purpose=marketing, channel="email", action="requested", occurred_at=at(2),
                              external_id="x5"),
        services.ConsentInput(member=c, purpose=marketing, channel="sms", action="withdrawn", occurred_at=at(2),
                              external_id="x6"),  # same time as x4, recorded later: wins
        services.ConsentInput(member=c, purpose=marketing, channel="sms", action="granted", occurred_at=at(9),
                              external_id="x4"),  # a repeat inside the batch
    ]  # fmt: skip
    results = services.record_consents(items, brand=brand, source_type="api_key")
    assert [r.created for r in results] == [True, True, True, True, True, True, False]
    assert [r.state_changed for r in results] == [True, False, False, True, True, True, False]
    assert results[6].event.pk == results[3].event.pk
    assert list(ConsentEvent.objects.filter(member=c).order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    states = {(s.member_id, s.channel): s.action for s in ConsentState.objects.all()}
    assert states == {(a.pk, "sms"): "withdrawn", (b.pk, "sms"): "withdrawn", (c.pk, "sms"): "withdrawn",
                      (c.pk, "email"): "requested"}  # fmt: skip
    assert verify_ledger().ok
    assert services.state_differences() == []
    call_command("rebuild_consent_state", "--check")
    # A single append after the batch continues the chain.
    services.record_consent(member=c, brand=brand, purpose=marketing, channel="sms", action="granted",
                            source_type="store")  # fmt: skip
    assert verify_ledger().ok and services.state_differences() == []
    # The same batch again stores nothing.
    again = services.record_consents(items, brand=brand, source_type="api_key")
    assert not any(r.created for r in again)
    assert ConsentEvent.objects.count() == 9


def test_an_invalid_item_stores_nothing(brand, tmall, marketing):
    a, b = make_members(tmall, 2)
    items = [
        services.ConsentInput(member=a, purpose=marketing, channel="sms", action="granted", external_id="ok"),
        services.ConsentInput(member=b, purpose=marketing, channel="sms", action="confirmed", external_id="bad"),
    ]
    with pytest.raises(services.BatchConsentError) as caught:
        services.record_consents(items, brand=brand, source_type="api_key")
    assert caught.value.index == 1 and caught.value.field == "action"
    assert not ConsentEvent.objects.exists()

"""``consent.ledger_batch.append_many``: the chain and projection of single appends."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import ledger
from consent.ledger_batch import NewEvent, append_many
from consent.models import ConsentEvent, ConsentState
from consent.services import record_consent
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()


class _Out:
    def write(self, s: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _event(member, brand, purpose, action, minutes_ago, external_id):
    return NewEvent(
        member_id=member.pk, brand_id=brand.pk, purpose_id=purpose.pk, channel="sms", action=action,
        occurred_at=NOW - dt.timedelta(minutes=minutes_ago), recorded_at=NOW, source_type="import_job",
        source_ref="import-job:1", store_id=None, notice_id=None, evidence='{"file_sha256":"ab","row":2}',
        external_id=external_id,
    )  # fmt: skip


def test_batch_continues_chains_and_keeps_newest_state(brand, marketing_purpose):
    old, fresh = MemberFactory(), MemberFactory()
    record_consent(member=old, brand=brand, purpose="marketing", channel="sms", action="granted",
                   source_type="store", occurred_at=NOW - dt.timedelta(minutes=5))  # fmt: skip
    changed = append_many(
        [
            _event(old, brand, marketing_purpose, "withdrawn", 60, "x1"),  # older than the state: evidence only
            _event(fresh, brand, marketing_purpose, "granted", 30, "x2"),
            _event(fresh, brand, marketing_purpose, "withdrawn", 20, "x3"),
            _event(old, brand, marketing_purpose, "withdrawn", 1, "x4"),
        ]
    )
    assert changed == 3  # x2, x3 and x4 moved the state; x1 is older than it
    chain = list(ConsentEvent.objects.filter(member=old).order_by("seq"))
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[1].prev_hash == chain[0].hash and chain[2].prev_hash == chain[1].hash
    assert all(ledger.hash_event(e) == e.hash for e in ConsentEvent.objects.all())
    assert ConsentState.objects.get(member=old).event.external_id == "x4"
    assert ConsentState.objects.get(member=fresh).action == "withdrawn"
    # A single append after the batch goes on from the batch's head.
    record_consent(member=fresh, brand=brand, purpose="marketing", channel="sms", action="granted", source_type="store")
    assert list(ConsentEvent.objects.filter(member=fresh).order_by("seq").values_list("seq", flat=True)) == [1, 2, 3]
    call_command("verify_consent_ledger", stdout=_Out())
    call_command("rebuild_consent_state", "--check", stdout=_Out())


def test_empty_batch(db):
    assert append_many([]) == 0

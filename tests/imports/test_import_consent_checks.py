"""A member file's consent answers are judged by the rules of record_consent
(consent.validation): the choice a file row may not record is one record_consent
refuses too, for the same reason. On PostgreSQL the file goes the COPY path, elsewhere
the row-by-row one; both take their rows from the same validator."""

from __future__ import annotations

import pytest

from consent.models import Purpose
from consent.services import ConsentError, record_consent
from imports.columns import parse_datetime
from imports.service import import_member_file
from members.identities import StoreRecord
from members.services import resolve_store_record

from .import_helpers import write_csv

pytestmark = pytest.mark.django_db

JOINED = "2024-03-01 10:00:00"

# header of the consent column, its answer, consent_at; the purpose and channel
# record_consent gets; the field both name (None: recorded); same words in both.
CASES = [
    ("consent_marketing_sms", "1", JOINED, "marketing", "sms", None, True),
    ("consent_analytics", "0", JOINED, "analytics", "", None, True),
    ("consent_marketing", "1", JOINED, "marketing", "", "channel", False),
    ("consent_personalization_sms", "0", JOINED, "personalization", "sms", "channel", False),
    ("consent_loyalty_sms", "1", JOINED, "loyalty", "sms", "purpose", False),
    ("consent_analytics", "1", JOINED, "analytics", "", "notice", True),
    ("consent_marketing_sms", "1", "2999-01-01 10:00:00", "marketing", "sms", "occurred_at", True),
    ("consent_marketing_sms", "1", "1999-01-01 10:00:00", "marketing", "sms", "occurred_at", True),
]


@pytest.fixture
def analytics(brand, purposes):
    """A purpose that contacts nobody and has no notice (and the brand no brand-wide one)."""
    return Purpose.objects.create(brand=brand, code="analytics", name="analytics", channels=[])


@pytest.mark.parametrize(("column", "answer", "consent_at", "purpose", "channel", "field", "same_words"), CASES)
def test_the_file_refuses_what_record_consent_refuses(
    tmp_path, tmall, analytics, column, answer, consent_at, purpose, channel, field, same_words
):
    path = write_csv(
        tmp_path / "m.csv",
        [["F1", JOINED, answer, consent_at]],
        header=["member_id", "joined_at", column, "consent_at"],
    )
    result = import_member_file(path, store=tmall)
    member = resolve_store_record(StoreRecord.clean(store=tmall, store_member_id="S1")).member
    try:
        record_consent(
            member=member, brand=tmall.brand, purpose=purpose, channel=channel,
            action="granted" if answer == "1" else "withdrawn", source_type="store",
            occurred_at=parse_datetime(consent_at),
        )  # fmt: skip
        refusal = None
    except ConsentError as exc:
        refusal = exc
    if field is None:
        assert refusal is None and result.rejected == 0 and result.consent_events == 1
        return
    assert refusal is not None and refusal.field == field
    assert result.rejected == 1 and result.consent_events == 0
    _row, refused_column, _value, reason = result.errors[0]
    assert refused_column == (column if field != "occurred_at" else "consent_at")
    if same_words:
        assert reason == refusal.message

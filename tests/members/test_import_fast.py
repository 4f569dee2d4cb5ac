"""The PostgreSQL fast path gives exactly what the row-by-row path gives on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from consent.importing.service import import_member_file
from consent.models import ConsentEvent, ConsentState
from members.identities import erased_value
from members.models import Identity, Member, MergeEvent, StoreMembership

from .import_helpers import HEADER, Out, row, write_csv

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _existing(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "jd.csv",
        [
            row("J1", phone="13800000001", name="甲", city="上海"),
            row("J2", email="e2@example.com", name="乙"),
            row("J3", phone="13800000003", consent_marketing_sms="1", consent_at="2024-01-01 10:00"),
            row("J4", wechat_unionid="oUnion000004", name="丁"),
        ],
    )


def _tmall_file(tmp_path: Path) -> Path:
    header = [*HEADER, "备注"]
    rows = [
        # An existing person, newer profile values.
        [*row("T1", phone="+86 138 0000 0001", name="甲二", city="杭州", consent_marketing_sms="1"), ""],
        # An old withdrawal for an existing grant: evidence, but the state stays granted.
        [*row("T2", phone="138-0000-0003", consent_marketing_sms="0", consent_at="2023-12-01 10:00"), ""],
        # Two rows of one new person (shared e-mail).
        [*row("T3", email="e5@example.com", name="戊", consent_personalization="1"), ""],
        [*row("T4", phone="13800000006", email="E5@example.com", city="北京"), "VIP"],
        # Two new people, then a row linking both: a merge under the row-by-row rules.
        [*row("T5", phone="13800000007", name="庚"), ""],
        [*row("T6", email="e8@example.com", name="辛", consent_marketing_email="1"), ""],
        [*row("T7", phone="13800000007", email="e8@example.com"), ""],
        # Links two existing people.
        [*row("T8", phone="13800000001", email="e2@example.com", consent_marketing_sms="0"), ""],
        [*row("T9", wechat_unionid="oUnion000004", gender="女", birthday="1990-01-02"), "=cmd"],
        [*row("T10", phone="12"), ""],
        [*row("T11", name="先"), ""],
        [*row("T12", phone="13800000012", consent_marketing_sms="1", consent_personalization="0"), ""],
        [*row("T11", name="后", tier="金卡", points="12"), ""],
        # A person erased at their request: refused, not re-created.
        [*row("T13", phone="13800000099", name="又来了", consent_marketing_sms="1"), ""],
    ]
    return write_csv(tmp_path / "tm.csv", rows, header=header)


def _snapshot() -> dict:
    people = {}
    for member in Member.objects.filter(status="active"):
        key = frozenset(StoreMembership.objects.filter(member=member).values_list("store__code", "store_member_id"))
        absorbed = list(Member.objects.filter(merged_into=member).values_list("pk", flat=True))
        events = ConsentEvent.objects.filter(member_id__in=[member.pk, *absorbed])
        people[key] = {
            "profile": {name: getattr(member, name) for name in Member.PROFILE_FIELDS},
            "observed": member.profile_observed_at is not None,
            "attributes": member.attributes,
            "absorbed": len(absorbed),
            "identities": set(Identity.objects.filter(member=member).values_list("kind", "value", "store__code")),
            "memberships": set(
                StoreMembership.objects.filter(member=member).values_list(
                    "store__code", "store_member_id", "joined_at", "tier", "points"
                )
            ),
            "events": sorted(
                (
                    e.external_id or "",
                    e.purpose_id,
                    e.channel,
                    e.action,
                    e.occurred_at,
                    e.source_type,
                    str(e.evidence.get("row", "")),
                    e.notice_id,
                    e.store_id,
                    e.member_id == member.pk,
                )
                for e in events
            ),  # fmt: skip
            "states": set(
                ConsentState.objects.filter(member=member).values_list(
                    "purpose_id", "channel", "action", "occurred_at", "event__external_id"
                )
            ),
        }
    return {"people": people, "merges": MergeEvent.objects.count()}


def _import(path: Path, store, *, fast: bool) -> tuple[dict, dict]:
    with transaction.atomic():
        result = import_member_file(path, store=store, fast=fast)
        call_command("verify_consent_ledger", stdout=Out())
        call_command("rebuild_consent_state", "--check", stdout=Out())
        snapshot = _snapshot()
        transaction.set_rollback(True)
    counts = result.as_json()
    counts.pop("seconds")
    return counts, snapshot


def _erase(store_member_id: str) -> None:
    """What carrying out a deletion request does to identities (consent.rights)."""
    member = StoreMembership.objects.get(store_member_id=store_member_id).member
    for identity in Identity.objects.filter(member=member):
        Identity.objects.filter(pk=identity.pk).update(value=erased_value(identity.kind, identity.value))
    Member.objects.filter(pk=member.pk).update(status="erased", name="", phone="", email="")


@pytest.mark.parametrize("chunk", [3, 1000])
def test_fast_path_equals_row_by_row(tmp_path, tmall, jd, purposes, settings, chunk):
    settings.IMPORT_CHUNK_ROWS = chunk
    import_member_file(_existing(tmp_path), store=jd, fast=False)
    import_member_file(write_csv(tmp_path / "gone.csv", [row("J9", phone="13800000099")]), store=jd, fast=False)
    _erase("J9")
    path = _tmall_file(tmp_path)
    plain_counts, plain = _import(path, tmall, fast=False)
    fast_counts, fast = _import(path, tmall, fast=True)
    assert fast_counts == plain_counts
    assert plain_counts["merged"] == 2 and plain_counts["rejected"] == 3
    assert fast["merges"] == plain["merges"] == 2
    assert fast["people"].keys() == plain["people"].keys()
    for key, person in plain["people"].items():
        assert fast["people"][key] == person, sorted(key)


def test_fast_path_is_idempotent_and_keeps_the_chain(tmp_path, tmall, jd, purposes):
    import_member_file(_existing(tmp_path), store=jd, fast=True)
    path = _tmall_file(tmp_path)
    first = import_member_file(path, store=tmall, fast=True)
    assert first.path == "fast" and first.consent_events > 0
    counts = (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count())
    before = _snapshot()
    again = import_member_file(path, store=tmall, fast=True)
    # T5 (庚) and T6 (辛) are one person by now: each import writes one name, then the
    # other (the later record wins), and ends where it was. Nothing else moves.
    assert (again.created, again.updated, again.merged, again.consent_events) == (0, 2, 0, 0)
    assert (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count()) == counts
    assert _snapshot() == before
    # A single append after a batch continues the same chain.
    from consent.services import record_consent

    member = StoreMembership.objects.get(store_member_id="T12").member
    record_consent(member=member, brand=tmall.brand, purpose="marketing", channel="sms", action="withdrawn",
                   source_type="store")  # fmt: skip
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=Out())

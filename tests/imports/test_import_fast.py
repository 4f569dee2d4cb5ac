"""The PostgreSQL fast path gives exactly what the row-by-row path gives on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from consent.models import ConsentEvent
from imports.service import import_member_file
from members.models import Member, StoreMembership

from .import_helpers import (
    Out,
    counts_of,
    erase,
    existing_file,
    pushed_events,
    row,
    snapshot,
    subscribe_to_consent,
    tmall_file,
    write_csv,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _import(path: Path, store, *, fast: bool) -> tuple[dict, dict]:
    with transaction.atomic():
        result = import_member_file(path, store=store, fast=fast)
        call_command("verify_consent_ledger", stdout=Out())
        call_command("rebuild_consent_state", "--check", stdout=Out())
        people = snapshot()
        transaction.set_rollback(True)
    return counts_of(result), people


@pytest.mark.parametrize(
    ("chunk", "batch_references"), [(3, True), (1000, True), (1000, False)], ids=["3", "1000", "1000-row-triggers"]
)
def test_fast_path_equals_row_by_row(tmp_path, tmall, jd, purposes, settings, monkeypatch, chunk, batch_references):
    settings.IMPORT_CHUNK_ROWS = chunk
    if not batch_references:  # a role without the privilege: PostgreSQL's own triggers check each row
        monkeypatch.setattr("consent.ledger_batch.may_skip_reference_triggers", lambda: False)
    import_member_file(existing_file(tmp_path), store=jd, fast=False)
    import_member_file(write_csv(tmp_path / "gone.csv", [row("J9", phone="13800000099")]), store=jd, fast=False)
    erase("J9")
    path = tmall_file(tmp_path)
    plain_counts, plain = _import(path, tmall, fast=False)
    fast_counts, fast = _import(path, tmall, fast=True)
    assert fast_counts == plain_counts
    assert plain_counts["merged"] == 2 and plain_counts["rejected"] == 3
    assert fast["merges"] == plain["merges"] == 2
    assert fast["people"].keys() == plain["people"].keys()
    for key, person in plain["people"].items():
        assert fast["people"][key] == person, sorted(key)


def test_fast_path_is_idempotent_and_keeps_the_chain(tmp_path, tmall, jd, purposes):
    import_member_file(existing_file(tmp_path), store=jd, fast=True)
    path = tmall_file(tmp_path)
    first = import_member_file(path, store=tmall, fast=True)
    assert first.path == "fast" and first.consent_events > 0
    counts = (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count())
    before = snapshot()
    again = import_member_file(path, store=tmall, fast=True)
    # T5 (庚) and T6 (辛) are one person by now: each import writes one name, then the
    # other (the later record wins), and ends where it was. Nothing else moves.
    assert (again.created, again.updated, again.merged, again.consent_events) == (0, 2, 0, 0)
    assert (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count()) == counts
    assert snapshot() == before
    # A single append after a batch continues the same chain.
    from consent.services import record_consent

    member = StoreMembership.objects.get(store_member_id="T12").member
    record_consent(member=member, brand=tmall.brand, purpose="marketing", channel="sms", action="withdrawn",
                   source_type="store")  # fmt: skip
    call_command("verify_consent_ledger", stdout=Out())
    call_command("rebuild_consent_state", "--check", stdout=Out())


@pytest.mark.parametrize("fast", [False, True], ids=["plain", "fast"])
def test_imported_consent_is_pushed_to_webhook_subscribers(
    tmp_path, tmall, jd, purposes, settings, monkeypatch, django_capture_on_commit_callbacks, fast
):
    """Both paths push every event the import recorded, once (the fast path per chunk
    with ``consent_appended``, the plain path per event with ``consent_changed``)."""
    import_member_file(existing_file(tmp_path), store=jd, fast=False)
    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    before = set(ConsentEvent.objects.values_list("pk", flat=True))
    path = tmall_file(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        result = import_member_file(path, store=tmall, fast=fast)
    recorded = sorted(set(ConsentEvent.objects.values_list("pk", flat=True)) - before)
    assert result.consent_events == len(recorded) > 0
    pushed = pushed_events()
    assert sorted(event["id"] for event in pushed) == recorded
    assert {event["source"] for event in pushed} == {"import_job"}
    assert {(event["id"], event["action"], event["purpose"]) for event in pushed} == set(
        ConsentEvent.objects.filter(pk__in=recorded).values_list("pk", "action", "purpose__code")
    )
    # Importing the file again records nothing and pushes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        import_member_file(path, store=tmall, fast=fast)
    assert len(pushed_events()) == len(recorded)


def test_consent_appended_is_sent_after_the_commit_only(
    tmp_path, tmall, purposes, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from consent.signals import consent_appended

    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    calls = []

    def listener(sender, **kwargs):
        calls.append(kwargs)

    consent_appended.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            dry = import_member_file(tmall_file(tmp_path), store=tmall, fast=True, dry_run=True)
        assert dry.consent_events > 0 and calls == [] and pushed_events() == []
        with django_capture_on_commit_callbacks() as callbacks:
            result = import_member_file(tmall_file(tmp_path), store=tmall, fast=True)
        assert calls == []  # not before the commit
        for callback in callbacks:
            callback()
    finally:
        consent_appended.disconnect(listener)
    assert [(call["brand_id"], call["source_type"]) for call in calls] == [(tmall.brand_id, "import_job")]
    recorded = set(ConsentEvent.objects.values_list("pk", flat=True))
    assert len(recorded) == result.consent_events and set(calls[0]["event_ids"]) <= recorded

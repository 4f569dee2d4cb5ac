"""The COPY path (PostgreSQL) gives exactly what the row-by-row path gives on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from consent.models import ConsentEvent
from imports.columns import parse_datetime
from imports.service import import_member_file
from members.identities import erased_value
from members.models import Member, StoreMembership

from .import_helpers import (
    Out,
    assert_same_people,
    counts_of,
    erase,
    existing_file,
    keep_apart,
    observed_later,
    person_of,
    pushed_events,
    row,
    snapshot,
    subscribe_to_consent,
    tmall_file,
    tmall_update_file,
    write_csv,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
JOINED = "2024-03-01 10:00:00"  # import_helpers.row's default


def _import(path: Path, store, *, use_copy: bool) -> tuple[dict, dict]:
    with transaction.atomic():
        result = import_member_file(path, store=store, use_copy=use_copy)
        call_command("verify_consent_ledger", stdout=Out())
        call_command("rebuild_consent_state", "--check", stdout=Out())
        people = snapshot()
        transaction.set_rollback(True)
    return counts_of(result), people


@pytest.mark.parametrize(
    ("chunk", "batch_references"), [(3, True), (1000, True), (1000, False)], ids=["3", "1000", "1000-row-triggers"]
)
def test_copy_path_equals_row_by_row(tmp_path, tmall, jd, purposes, settings, monkeypatch, chunk, batch_references):
    settings.IMPORT_CHUNK_ROWS = chunk
    if not batch_references:  # a role without the privilege: PostgreSQL's own triggers check each row
        monkeypatch.setattr("consent.ledger_batch.may_skip_reference_triggers", lambda: False)
    import_member_file(existing_file(tmp_path), store=jd, use_copy=False)
    import_member_file(write_csv(tmp_path / "gone.csv", [row("J9", phone="13800000099")]), store=jd, use_copy=False)
    erase("J9")
    observed_later("J4")
    path = tmall_file(tmp_path)
    expected_counts, expected = _import(path, tmall, use_copy=False)
    copy_counts, copied = _import(path, tmall, use_copy=True)
    assert copy_counts == expected_counts
    assert_same_people(expected, copied)
    assert expected_counts["merged"] == 2 and expected_counts["rejected"] == 3
    assert expected["merges"] == 2
    # Survivorship at work: an older observation fills blanks only, a newer one wins.
    j4 = person_of(expected, ("lotus-jd", "J4"))
    assert (j4["profile"]["name"], j4["profile"]["gender"]) == ("丁", "F")
    assert person_of(expected, ("lotus-jd", "J1"))["profile"]["city"] == "杭州"


@pytest.mark.parametrize("chunk", [3, 1000])
def test_copy_path_equals_row_by_row_with_a_never_merge_pair(tmp_path, tmall, jd, purposes, settings, chunk):
    """J1 and J2 were merged once and unmerged: T8, which links them (J1's phone, J2's
    e-mail), joins J1's person and leaves J2 its e-mail on both paths, with the same
    "kept apart" explanation; T5-T7 still merge."""
    settings.IMPORT_CHUNK_ROWS = chunk
    import_member_file(existing_file(tmp_path), store=jd, use_copy=False)
    keep_apart(jd, "J1", "J2", tmp_path)
    path = tmall_file(tmp_path)
    expected_counts, expected = _import(path, tmall, use_copy=False)
    copy_counts, copied = _import(path, tmall, use_copy=True)
    assert copy_counts == expected_counts
    assert_same_people(expected, copied)
    assert expected_counts["merged"] == 1 and expected["merges"] == 2  # T5-T7, and the undone J1-J2
    [(rule, value, _kept_by, _went_to, pair)] = expected["kept_apart"]
    # J2 keeps it; the merge event names the shared e-mail by its keyed hash only.
    assert (rule, value) == ("email", erased_value("email", "e2@example.com")) and pair is not None
    j1, j2 = person_of(expected, ("lotus-jd", "J1")), person_of(expected, ("lotus-jd", "J2"))
    assert ("lotus-tmall", "T8") in {m[:2] for m in j1["memberships"]}
    assert ("email", "e2@example.com", "lotus-jd") in j2["identities"]
    assert j1["profile"]["email"] == ""  # J2's e-mail is not copied to J1's person


@pytest.mark.parametrize("chunk", [3, 1000])
def test_copy_path_equals_row_by_row_on_a_second_file(tmp_path, tmall, jd, purposes, settings, chunk):
    """Members and memberships of this store already there: what a second file changes
    (tier, points, join time, attributes) and what it leaves (blank values)."""
    settings.IMPORT_CHUNK_ROWS = chunk
    import_member_file(existing_file(tmp_path), store=jd, use_copy=False)
    import_member_file(tmall_file(tmp_path), store=tmall, use_copy=False)
    path = tmall_update_file(tmp_path)
    expected_counts, expected = _import(path, tmall, use_copy=False)
    copy_counts, copied = _import(path, tmall, use_copy=True)
    assert copy_counts == expected_counts
    assert_same_people(expected, copied)
    assert (expected_counts["created"], expected_counts["updated"], expected_counts["rejected"]) == (1, 3, 0)
    t1 = person_of(expected, ("lotus-tmall", "T1"))
    assert t1["attributes"] == {"备注": "SVIP"} and t1["profile"]["name"] == "甲二"
    assert {m[1:] for m in t1["memberships"] if m[1] == "T1"} == {
        ("T1", parse_datetime("2024-05-01 10:00:00"), "金卡", 100)
    }
    t11 = person_of(expected, ("lotus-tmall", "T11"))
    assert {m[1:] for m in t11["memberships"]} == {("T11", parse_datetime(JOINED), "金卡", 0)}
    t12 = person_of(expected, ("lotus-tmall", "T12"))
    assert t12["profile"]["city"] == "成都" and t12["attributes"] == {"备注": "新"}


def test_copy_path_is_idempotent_and_keeps_the_chain(tmp_path, tmall, jd, purposes):
    import_member_file(existing_file(tmp_path), store=jd, use_copy=True)
    path = tmall_file(tmp_path)
    first = import_member_file(path, store=tmall, use_copy=True)
    assert first.path == "copy" and first.consent_events > 0
    counts = (Member.objects.count(), StoreMembership.objects.count(), ConsentEvent.objects.count())
    before = snapshot()
    again = import_member_file(path, store=tmall, use_copy=True)
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


@pytest.mark.parametrize("use_copy", [False, True], ids=["row-by-row", "copy"])
def test_imported_consent_is_pushed_to_webhook_subscribers(
    tmp_path, tmall, jd, purposes, settings, monkeypatch, django_capture_on_commit_callbacks, use_copy
):
    """Both paths push every event the import recorded, once (the COPY path per chunk
    with ``consent_appended``, the row-by-row path per event with ``consent_changed``)."""
    import_member_file(existing_file(tmp_path), store=jd, use_copy=False)
    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    before = set(ConsentEvent.objects.values_list("pk", flat=True))
    path = tmall_file(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        result = import_member_file(path, store=tmall, use_copy=use_copy)
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
        import_member_file(path, store=tmall, use_copy=use_copy)
    assert len(pushed_events()) == len(recorded)


def test_consent_appended_is_sent_inside_the_chunks_transaction(
    tmp_path, tmall, purposes, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Receivers write their outbox rows in the chunk's transaction: a dry run (rolled
    back) leaves no row and pushes nothing; an import leaves its rows beside its events."""
    from django.db import connection

    from cdp.models import OutboxMessage
    from consent.signals import consent_appended

    subscribe_to_consent(tmall.brand, settings, monkeypatch)
    calls = []

    def listener(sender, **kwargs):
        calls.append({**kwargs, "in_transaction": connection.in_atomic_block})

    publishing = OutboxMessage.objects.filter(task="webhooks.tasks.publish_events")
    consent_appended.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            dry = import_member_file(tmall_file(tmp_path), store=tmall, use_copy=True, dry_run=True)
        assert dry.consent_events > 0 and not publishing.exists() and pushed_events() == []
        calls.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = import_member_file(tmall_file(tmp_path), store=tmall, use_copy=True)
    finally:
        consent_appended.disconnect(listener)
    assert [(c["brand_id"], c["source_type"], c["in_transaction"]) for c in calls] == [
        (tmall.brand_id, "import_job", True)
    ]
    recorded = set(ConsentEvent.objects.values_list("pk", flat=True))
    assert len(recorded) == result.consent_events and set(calls[0]["event_ids"]) <= recorded
    assert publishing.count() == 1 and len(pushed_events()) == result.consent_events


def _import_mailing(path: Path, store, *, use_copy: bool) -> tuple[dict, dict, list]:
    """``_import``, and the e-mail requests whose confirmation mail the import queued:
    (the person's memberships, purpose)."""
    from unittest import mock

    queued: list[int] = []

    def remember(task: str, ids: int | list[int]) -> None:  # one mail, or an import's batch
        queued.extend(ids if isinstance(ids, list) else [ids])

    queue = mock.patch("consent.services.email_requests.enqueue_on_commit", remember)
    with queue, transaction.atomic():
        result = import_member_file(path, store=store, use_copy=use_copy)
        call_command("verify_consent_ledger", stdout=Out())
        call_command("rebuild_consent_state", "--check", stdout=Out())
        people = snapshot()
        memberships = StoreMembership.objects.values_list("store_member_id", flat=True)
        mailed = sorted(
            (tuple(sorted(memberships.filter(member=e.member))), e.purpose.code)
            for e in ConsentEvent.objects.filter(pk__in=queued).select_related("purpose")
        )
        transaction.set_rollback(True)
    return counts_of(result), people, mailed


@pytest.mark.parametrize("chunk", [3, 1000])
def test_copy_path_equals_row_by_row_for_email_double_opt_in(tmp_path, tmall, jd, purposes, settings, chunk):
    """E-mail grants with and without the store's proof, on new and existing people:
    the same requests, confirmations and queued mails on both paths (issue 22 item 6)."""
    from consent import optin, tokens
    from consent.models import Notice, Purpose
    from consent.services import publish_notice

    from .import_helpers import HEADER

    settings.IMPORT_CHUNK_ROWS = chunk
    newsletter = Purpose.objects.create(brand=tmall.brand, code="newsletter", name="newsletter", channels=["email"])
    publish_notice(brand=tmall.brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=newsletter, locale="zh-hans",
                   title="newsletter", body="v1")  # fmt: skip
    # Existing people: J1 confirmed, J2 asked today (no answer yet), J3 withdrew.
    import_member_file(write_csv(tmp_path / "jd.csv", [
        row("J1", email="c@example.com", consent_marketing_email="1"),
        row("J2", email="p@example.com", consent_marketing_email="1"),
        row("J3", email="w@example.com", consent_marketing_email="0"),
    ]), store=jd, use_copy=False)  # fmt: skip
    j1_request = ConsentEvent.objects.get(member__email="c@example.com", action="requested")
    optin.confirm_email_opt_in(tokens.make_opt_in_token(j1_request.pk), evidence={"ip": "203.0.113.1"})
    header = [*HEADER, "consent_newsletter_email", "email_confirmed_at", "email_confirmed_ip", "email_confirmation_id"]
    no_proof = ("", "", "")
    proof = ("2024-03-01 10:20:00", "198.51.100.2", "<optin-E2@tmall.example>")
    rows = [
        # New: a request and its mail; the newsletter's request the same day has its mail held.
        [*row("E1", email="e1@example.com", consent_marketing_email="1"), "1", *no_proof],
        # New, with the store's proof: confirmed, no mail.
        [*row("E2", email="e2@example.com", consent_marketing_email="1", consent_marketing_sms="1",
              phone="13800000002"), "", *proof],
        # Two rows of one new person: the second grant finds the first's request.
        [*row("E3", email="e3@example.com", consent_marketing_email="1"), "", *no_proof],
        [*row("E4", email="E3@example.com", phone="13800000004", consent_marketing_email="1",
              consent_at="2024-03-02 10:00:00"), "", *no_proof],
        # Existing people: confirmed (nothing), asked today (nothing), withdrew (asked again).
        [*row("E5", email="c@example.com", consent_marketing_email="1"), "", *no_proof],
        [*row("E6", email="p@example.com", consent_marketing_email="1"), "", *no_proof],
        [*row("E7", email="w@example.com", consent_marketing_email="1", consent_at="2024-03-05 10:00:00"), "",
         *no_proof],
        # A withdrawal, then a later grant of the same new person: a request and a mail.
        [*row("E8", email="x@example.com", consent_marketing_email="0"), "", *no_proof],
        [*row("E9", email="x@example.com", consent_marketing_email="1", consent_at="2024-03-02 10:00:00"), "",
         *no_proof],
        # An incomplete proof: the row is refused.
        [*row("E10", email="e10@example.com", consent_marketing_email="1"), "", "2024-03-01 10:20:00", "", ""],
    ]  # fmt: skip
    path = write_csv(tmp_path / "tm.csv", rows, header=header)
    expected_counts, expected, expected_mails = _import_mailing(path, tmall, use_copy=False)
    copy_counts, copied, copied_mails = _import_mailing(path, tmall, use_copy=True)
    assert copy_counts == expected_counts
    assert_same_people(expected, copied)
    assert copied_mails == expected_mails
    assert expected_mails == [
        (("E1",), "marketing"), (("E3", "E4"), "marketing"), (("E7", "J3"), "marketing"), (("E8", "E9"), "marketing"),
    ]  # fmt: skip
    assert expected_counts["rejected"] == 1

    def email_events(*members: str) -> list[tuple[str, str]]:
        events = person_of(expected, ("lotus-tmall", members[0]))["events"]
        return sorted((e[3], "proof" if e[7] != "null" else "") for e in events if e[2] == "email")

    assert email_events("E1") == [("requested", ""), ("requested", "")]
    assert email_events("E2") == [("confirmed", "proof")]
    assert email_events("E3") == [("requested", "")]
    assert email_events("E5") == [("confirmed", ""), ("requested", "")]  # J1's, nothing new
    assert email_events("E6") == [("requested", "")]
    assert email_events("E7") == [("requested", ""), ("withdrawn", "")]
    assert email_events("E8") == [("requested", ""), ("withdrawn", "")]

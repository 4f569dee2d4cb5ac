"""E-mail grants in a member file need double opt-in (issue 22 item 6): each becomes a
request and the person gets a mail to confirm, at most one a day per brand, unless the
file carries the proof of a double opt-in the store ran itself (``email_confirmed_at``,
``email_confirmed_ip``, ``email_confirmation_id``). Row by row here; the COPY path gives
the same (tests/imports/test_import_copy_path.py)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail

from consent import tasks
from consent.models import ConsentEvent, ConsentState
from consent.queries import can_contact
from members.models import Member

from .import_helpers import HEADER, row, run_import, write_csv

pytestmark = pytest.mark.django_db

PROOF_HEADER = [*HEADER, "email_confirmed_at", "email_confirmed_ip", "email_confirmation_id"]
LINK = re.compile(r"https?://\S+/privacy/confirm/[^/\s\"<]+/")


def proof_row(member_id: str, proof: tuple[str, str, str] = ("", "", ""), **values: str) -> list[str]:
    return [*row(member_id, **values), *proof]


def links() -> list[str]:
    return [urlsplit(match.group(0)).path for m in mail.outbox if (match := LINK.search(m.body))]


def email_events() -> list[tuple[str, str, str]]:
    return sorted((e.member.email, e.action, e.source_type) for e in ConsentEvent.objects.filter(channel="email"))


@pytest.fixture
def imported(tmp_path, tmall, purposes, django_capture_on_commit_callbacks):
    """Two people granting e-mail, one of them SMS too; the mails sent as after commit."""
    path = write_csv(tmp_path / "m.csv", [
        row("T1", email="wei@example.com", phone="13800138000", consent_marketing_email="1",
            consent_marketing_sms="1"),
        row("T2", email="na@example.com", consent_marketing_email="是"),
    ])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        counts = run_import(path, "lotus-tmall")
    assert counts["consent_events"] == 3 and counts["rejected"] == 0
    return path


def test_email_grants_become_requests_with_a_mail_each(imported, client, tmall, purposes):
    assert email_events() == [
        ("na@example.com", "requested", "import_job"), ("wei@example.com", "requested", "import_job"),
    ]  # fmt: skip
    sms = ConsentEvent.objects.get(channel="sms")
    assert sms.action == "granted"
    assert sorted(m.to[0] for m in mail.outbox) == ["na@example.com", "wei@example.com"]
    assert all(f"您在 {tmall.name} 同意接收" in m.body for m in mail.outbox)  # where they agreed
    wei = Member.objects.get(email="wei@example.com")
    marketing = purposes["marketing"]
    assert can_contact(wei, tmall.brand, marketing, "email").reason == "pending_confirmation"
    [link] = [path for path, m in zip(links(), mail.outbox, strict=True) if m.to == ["wei@example.com"]]
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 200
    assert can_contact(wei, tmall.brand, marketing, "email").allowed


def test_the_same_file_again_and_another_stores_file_the_same_day_mail_nothing(
    imported, tmp_path, jd, django_capture_on_commit_callbacks
):
    other = write_csv(tmp_path / "jd.csv", [row("J1", email="wei@example.com", consent_marketing_email="1",
                                                consent_at="2024-03-05 10:00:00")])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        again = run_import(imported, "lotus-tmall")
        jd_counts = run_import(other, "lotus-jd")
    assert again["consent_events"] == 0 and jd_counts["consent_events"] == 0  # the open requests answer
    assert len(mail.outbox) == 2
    assert ConsentEvent.objects.filter(channel="email").count() == 2


def test_proof_columns_confirm_with_the_proof_as_evidence(
    tmp_path, tmall, purposes, django_capture_on_commit_callbacks
):
    path = write_csv(tmp_path / "m.csv", [
        proof_row("T1", ("2024-03-01 10:20:00", "198.51.100.7", "<optin-T1@tmall.example>"),
                  email="wei@example.com", consent_marketing_email="1"),
        proof_row("T2", email="na@example.com", consent_marketing_email="1"),
    ], header=PROOF_HEADER)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        counts = run_import(path, "lotus-tmall")
    assert counts["consent_events"] == 2 and counts["rejected"] == 0
    assert email_events() == [
        ("na@example.com", "requested", "import_job"), ("wei@example.com", "confirmed", "import_job"),
    ]  # fmt: skip
    confirmed = ConsentEvent.objects.get(action="confirmed")
    assert confirmed.evidence["row"] == 2
    assert confirmed.evidence["confirmation"] == {
        "confirmed_at": "2024-03-01T02:20:00+00:00", "ip": "198.51.100.7", "message_id": "<optin-T1@tmall.example>",
    }  # fmt: skip
    assert [m.to for m in mail.outbox] == [["na@example.com"]]  # the confirmed one needs no link
    assert can_contact(confirmed.member, tmall.brand, purposes["marketing"], "email").allowed


def test_chinese_proof_headers(tmp_path, tmall, purposes):
    header = [*HEADER, "邮箱确认时间", "邮箱确认IP", "确认邮件ID"]
    path = write_csv(tmp_path / "m.csv", [
        proof_row("T1", ("2024-03-01 10:20:00", "2001:db8::1", "m-1"), email="wei@example.com",
                  consent_marketing_email="1"),
    ], header=header)  # fmt: skip
    run_import(path, "lotus-tmall")
    assert ConsentState.objects.get(channel="email").action == "confirmed"


@pytest.mark.parametrize(
    ("proof", "column", "reason"),
    [
        (("2024-03-01 10:20:00", "", ""), "email_confirmed_ip",
         "the store's confirmation also needs email_confirmed_ip, email_confirmation_id"),
        (("", "198.51.100.7", "m-1"), "email_confirmed_at", "the store's confirmation also needs email_confirmed_at"),
        (("2024-03-01 10:20:00", "not-an-ip", "m-1"), "email_confirmed_ip", "'not-an-ip' is not an IP address"),
        (("yesterday", "198.51.100.7", "m-1"), "email_confirmed_at", "is not a date and time"),
        (("2999-01-01 00:00:00", "198.51.100.7", "m-1"), "email_confirmed_at", "is in the future"),
    ],
)  # fmt: skip
def test_an_incomplete_or_wrong_proof_rejects_the_row(tmp_path, tmall, purposes, proof, column, reason):
    path = write_csv(tmp_path / "m.csv", [
        proof_row("T1", proof, email="wei@example.com", consent_marketing_email="1"),
        proof_row("T2", email="na@example.com", consent_marketing_email="1"),
    ], header=PROOF_HEADER)  # fmt: skip
    errors = tmp_path / "errors.csv"
    counts = run_import(path, "lotus-tmall", "--errors", str(errors))
    assert counts["rejected"] == 1 and counts["created"] == 1
    rejected = errors.read_text(encoding="utf-8-sig")
    assert column in rejected and reason in rejected
    assert email_events() == [("na@example.com", "requested", "import_job")]


def test_proof_columns_without_an_email_grant_are_not_read(tmp_path, tmall, purposes):
    path = write_csv(tmp_path / "m.csv", [
        proof_row("T1", ("garbage", "", ""), phone="13800138000", consent_marketing_sms="1",
                  consent_marketing_email="0"),
    ], header=PROOF_HEADER)  # fmt: skip
    counts = run_import(path, "lotus-tmall")
    assert counts["rejected"] == 0 and counts["consent_events"] == 2


def test_dry_run_mails_nothing(tmp_path, tmall, purposes, django_capture_on_commit_callbacks):
    path = write_csv(tmp_path / "m.csv", [row("T1", email="wei@example.com", consent_marketing_email="1")])
    with django_capture_on_commit_callbacks(execute=True):
        counts = run_import(path, "lotus-tmall", "--dry-run")
    assert counts["consent_events"] == 1
    assert mail.outbox == [] and not ConsentEvent.objects.exists()


def test_the_mails_of_a_big_file_go_out_at_a_limited_pace():
    """A file with 100,000 e-mail grants queues 100,000 mails; each worker sends them at
    this pace (Celery's rate limit; eager tests do not wait)."""
    assert tasks.send_opt_in_email.rate_limit == tasks.OPT_IN_MAIL_RATE == "10/s"


def test_an_email_grant_imported_before_double_opt_in_is_asked_on_the_next_import(
    tmp_path, tmall, purposes, django_capture_on_commit_callbacks
):
    """Imports used to record e-mail grants as ``granted``, which never allows e-mail.
    Their external ids named that answer; the same file now names ``requested``, so
    importing it again asks the people (an old-style event, written to the ledger as the
    import wrote it then)."""
    from consent.ledger_batch import NewEvent, append_many
    from consent.services import current_notice

    path = write_csv(tmp_path / "m.csv", [row("T1", email="wei@example.com", consent_marketing_email="1")])
    run_import(write_csv(tmp_path / "people.csv", [row("T1", email="wei@example.com")]), "lotus-tmall")
    wei = Member.objects.get(email="wei@example.com")
    marketing = purposes["marketing"]
    append_many([
        NewEvent(member_id=wei.pk, brand_id=tmall.brand_id, purpose_id=marketing.pk, channel="email", action="granted",
                 occurred_at=ConsentEvent._meta.get_field("occurred_at").to_python("2024-03-01T02:00:00+00:00"),
                 source_type="import_job", source_ref="import-job:0", store_id=tmall.pk,
                 notice_id=current_notice(tmall.brand, marketing).pk, evidence="{}", external_id="import:old"),
    ])  # fmt: skip
    assert ConsentState.objects.get(channel="email").action == "granted"
    with django_capture_on_commit_callbacks(execute=True):
        counts = run_import(path, "lotus-tmall")
    assert counts["consent_events"] == 1
    assert ConsentState.objects.get(channel="email").action == "requested"
    assert [m.to for m in mail.outbox] == [["wei@example.com"]]


def test_a_chunks_mails_are_queued_as_one_task_per_batch_on_the_copy_path(
    tmp_path, tmall, purposes, django_capture_on_commit_callbacks, settings
):
    # 20,000 rows asking for e-mail used to write 20,000 outbox rows inside the import;
    # now one per 500 mails, which the worker fans out (rate-limited, each through the outbox).
    from django.db import connection

    from cdp.models import OutboxMessage
    from consent.services import email_requests

    if connection.vendor != "postgresql":
        pytest.skip("the COPY path runs on PostgreSQL")
    settings.CELERY_TASK_ALWAYS_EAGER = True
    rows = [row(f"B{n}", email=f"b{n}@example.com", consent_marketing_email="1") for n in range(5)]
    path = write_csv(tmp_path / "b.csv", rows)
    email_requests.OPT_IN_MAIL_BATCH, saved = 2, email_requests.OPT_IN_MAIL_BATCH
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_import(path, "lotus-tmall")
    finally:
        email_requests.OPT_IN_MAIL_BATCH = saved
    assert OutboxMessage.objects.filter(task="consent.tasks.send_opt_in_emails").count() == 3  # 2 + 2 + 1
    assert OutboxMessage.objects.filter(task="consent.tasks.send_opt_in_email").count() == 5  # fanned out
    assert sorted(m.to[0] for m in mail.outbox) == [f"b{n}@example.com" for n in range(5)]

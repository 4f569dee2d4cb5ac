"""Consent files: a partner that cannot take webhooks gets the brand's consent events as a
daily signed file set (docs/api.md "Consent files")."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from cdp.beat import beat_schedule
from cdp.models import AuditLog
from consent import services as consent_services
from members.models import Member, StoreMembership
from members.signals import member_erased
from tests.conftest import see_every_brand
from tests.factories import UserFactory
from webhooks import signing, tasks
from webhooks.feeds import services as feeds
from webhooks.models import ConsentFile, ConsentFileFeed

from .conftest import member_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def feed(brand):
    feed, secret = feeds.create_feed(brand=brand, name="POS vendor")
    feed.given_secret = secret
    return feed


@pytest.fixture
def bob(jd):
    return member_of(jd, name="Bob", phone="+8613700137000", email="bob@example.com")


def consent(member, purpose, action, *, channel="sms", store=None, external_id=None, source="privacy_center"):
    return consent_services.record_consent(
        member=member, brand=purpose.brand, purpose=purpose, channel=channel, action=action, source_type=source,
        store=store, external_id=external_id,
    ).event  # fmt: skip


def run(*args: str) -> ConsentFile:
    out = io.StringIO()
    call_command("write_consent_files", *args, stdout=out)
    return ConsentFile.objects.order_by("-pk").first()


def read(consent_file: ConsentFile, suffix: str) -> bytes:
    return Path(feeds.media_root(), consent_file.directory, f"{_stem(consent_file)}{suffix}").read_bytes()


def _stem(consent_file: ConsentFile) -> str:
    return next(name for name in consent_file.hashes if name.endswith(".csv")).removesuffix(".csv")


def csv_rows(consent_file: ConsentFile) -> list[dict[str, str]]:
    data = read(consent_file, ".csv")
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def jsonl_rows(consent_file: ConsentFile) -> list[dict]:
    return [json.loads(line) for line in read(consent_file, ".jsonl").decode().splitlines()]


def verifies(feed: ConsentFileFeed, data: bytes, signature: bytes) -> bool:
    expected = hmac.new(signing.signing_key(feed.given_secret), data, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.decode().strip())


@pytest.fixture
def history(brand, tmall, jd, other_store, marketing, other_marketing, alice, bob, olga):
    """Our brand's grants and a withdrawal, and another brand's events about Olga and about
    Alice (who is also a member of the other brand's store)."""
    StoreMembership.objects.create(member=alice, store=other_store, store_member_id="PEONY-ALICE")
    ours = [
        consent(alice, marketing, "granted", store=tmall, external_id='=HYPERLINK("http://x")'),
        consent(bob, marketing, "granted", channel="wechat", store=jd),
    ]
    consent(olga, other_marketing, "granted")
    consent(alice, other_marketing, "granted")
    ours.append(consent(alice, marketing, "withdrawn"))
    return ours


def test_command_writes_signed_files_with_only_the_brands_events(feed, history, alice, bob, tmall, jd):
    consent_file = run()
    assert consent_file.feed == feed and consent_file.number == 1
    names = sorted(p.name for p in Path(feeds.media_root(), consent_file.directory).iterdir())
    stem = f"consent-lotus-{feed.pk}-000001"
    assert names == sorted(f"{stem}{s}" for s in (".csv", ".csv.sig", ".jsonl", ".jsonl.sig", ".manifest.json",
                                                   ".manifest.json.sig"))  # fmt: skip
    assert consent_file.directory == f"consent-files/lotus/{feed.pk}/{timezone.localdate().isoformat()}"

    ids = [e.pk for e in history]
    rows = csv_rows(consent_file)
    assert [int(r["event_id"]) for r in rows] == ids
    assert [r["action"] for r in rows] == ["granted", "granted", "withdrawn"]
    assert [int(r["member"]) for r in rows] == [alice.pk, bob.pk, alice.pk]
    assert rows[0]["store"] == "lotus-tmall" and rows[2]["store"] == ""
    assert rows[0]["external_id"].startswith("'=")  # formula-safe
    assert json.loads(rows[0]["memberships"]) == [{"member_id": f"S{alice.pk}", "store": "lotus-tmall"}]

    records = jsonl_rows(consent_file)
    assert [r["event_id"] for r in records] == ids
    assert records[1] == {
        "event_id": ids[1], "member": bob.pk, "purpose": "marketing", "channel": "wechat", "action": "granted",
        "occurred_at": history[1].occurred_at.isoformat(), "recorded_at": history[1].recorded_at.isoformat(),
        "source": "privacy_center", "store": "lotus-jd", "external_id": None,
        "memberships": [{"store": "lotus-jd", "member_id": f"S{bob.pk}"}],
    }  # fmt: skip
    everything = read(consent_file, ".csv") + read(consent_file, ".jsonl")
    assert b"PEONY" not in everything and b"peony" not in everything  # ⚑ brand wall

    for suffix in (".csv", ".jsonl", ".manifest.json"):
        assert verifies(feed, read(consent_file, suffix), read(consent_file, suffix + ".sig"))
    tampered = read(consent_file, ".csv").replace(b"withdrawn", b"granted")
    assert not verifies(feed, tampered, read(consent_file, ".csv.sig"))

    manifest = json.loads(read(consent_file, ".manifest.json"))
    assert manifest["events"] == 3 and manifest["counts"] == {"granted": 2, "withdrawn": 1}
    assert (manifest["first_event_id"], manifest["last_event_id"]) == (ids[0], ids[-1])
    for suffix in (".csv", ".jsonl"):
        assert manifest["files"][stem + suffix]["sha256"] == hashlib.sha256(read(consent_file, suffix)).hexdigest()
    feed.refresh_from_db()
    assert feed.cursor >= ids[-1] and consent_file.events == 3


def test_second_run_writes_only_newer_events_then_an_empty_set(feed, history, alice, marketing):
    first = run()
    newer = consent(alice, marketing, "granted")
    second = run()
    assert second.number == 2 and second.after_event_id == first.up_to_event_id
    assert [r["event_id"] for r in jsonl_rows(second)] == [newer.pk]
    third = run()
    assert third.number == 3 and third.events == 0 and csv_rows(third) == [] and jsonl_rows(third) == []
    assert read(third, ".csv").startswith(b"\xef\xbb\xbfevent_id,")  # header only: the day was processed
    assert verifies(feed, read(third, ".jsonl"), read(third, ".jsonl.sig"))
    assert json.loads(read(third, ".manifest.json"))["events"] == 0


def test_a_crash_before_commit_keeps_the_cursor_and_the_next_run_has_the_events(feed, history, monkeypatch):
    real_move = feeds._move_into_place

    def move_then_crash(*args):
        real_move(*args)
        raise RuntimeError("worker lost")

    monkeypatch.setattr(feeds, "_move_into_place", move_then_crash)
    with pytest.raises(RuntimeError):
        run()
    feed.refresh_from_db()
    assert feed.cursor == 0 and not ConsentFile.objects.exists()
    assert [p for p in Path(feeds.media_root()).rglob("*") if p.is_file()] == []

    monkeypatch.setattr(feeds, "_move_into_place", real_move)
    consent_file = run()
    assert consent_file.number == 1
    assert [r["event_id"] for r in jsonl_rows(consent_file)] == [e.pk for e in history]


def test_a_run_that_lost_the_race_writes_nothing(feed, history, monkeypatch):
    """Another run moved the cursor while this one wrote its files: this one gives up."""
    real_write = feeds.rows.write_set

    def write_while_another_run_commits(*args, **kwargs):
        written = real_write(*args, **kwargs)
        ConsentFileFeed.objects.filter(pk=feed.pk).update(cursor=kwargs["up_to"])
        return written

    monkeypatch.setattr(feeds.rows, "write_set", write_while_another_run_commits)
    assert feeds.write_feed(feed.pk) is None
    assert not ConsentFile.objects.exists()


def test_a_big_ledger_is_read_in_pages(feed, history, alice, marketing, monkeypatch, django_assert_max_num_queries):
    more = [consent(alice, marketing, action).pk for action in ("granted", "withdrawn", "granted", "withdrawn")]
    monkeypatch.setattr(feeds.rows, "PAGE_ROWS", 2)
    records = list(feeds.rows.events(feed, after=0, up_to=more[-1]))
    assert [r["event_id"] for r in records] == [e.pk for e in history] + more
    with django_assert_max_num_queries(4 * 2):  # 4 pages: the events and the memberships of each
        list(feeds.rows.events(feed, after=0, up_to=more[-1]))


def test_store_filter_sends_only_that_stores_members_and_ids(brand, jd, history, bob):
    feed, _secret = feeds.create_feed(brand=brand, name="JD", store=jd)
    records = jsonl_rows(run("--feed", str(feed.pk)))
    assert [r["member"] for r in records] == [bob.pk]
    assert records[0]["memberships"] == [{"store": "lotus-jd", "member_id": f"S{bob.pk}"}]


def test_a_feed_of_another_brand_gets_only_its_events(other_brand, history, olga, alice):
    feed, _secret = feeds.create_feed(brand=other_brand, name="peony partner")
    records = jsonl_rows(run("--feed", str(feed.pk)))
    assert [r["member"] for r in records] == [olga.pk, alice.pk]
    assert records[1]["memberships"] == [{"store": "peony-jd", "member_id": "PEONY-ALICE"}]


def test_a_store_of_another_brand_is_refused(brand, other_store):
    with pytest.raises(feeds.FeedError):
        feeds.create_feed(brand=brand, name="x", store=other_store)


def test_retention_deletes_old_files_and_keeps_the_row(feed, history, settings):
    old = run()
    later = timezone.now() + dt.timedelta(days=settings.CONSENT_FILE_RETENTION_DAYS + 1)
    recent = feeds.write_feed(feed.pk, now=later)
    assert feeds.delete_expired_files(now=later) == 1
    old.refresh_from_db()
    assert old.deleted_at is not None and old.events == 3 and old.hashes  # counts and hashes stay
    assert not Path(feeds.media_root(), old.directory).exists()
    assert all(Path(feeds.media_root(), recent.directory, name).is_file() for name in feeds.file_names(recent))
    assert AuditLog.objects.filter(action="consent_file.deleted", object_id=str(old.pk)).exists()


def test_erasure_deletes_the_files_that_hold_the_person(
    feed, history, brand, alice, django_capture_on_commit_callbacks
):
    consent_file = run()
    with django_capture_on_commit_callbacks(execute=True):
        member_erased.send(sender=Member, member_id=alice.pk, brand_ids=[brand.pk])
    consent_file.refresh_from_db()
    assert consent_file.deleted_at is not None
    assert not any(Path(feeds.media_root(), consent_file.directory, n).exists() for n in feeds.file_names(consent_file))


def test_the_daily_beat_task_writes_every_active_feed(feed, brand, history):
    paused, _secret = feeds.create_feed(brand=brand, name="paused")
    feeds.update_feed(paused, name="paused", is_active=False)
    entry = beat_schedule(outbox_relay_interval=5)["webhooks-write-consent-files"]
    assert entry["task"] == "webhooks.tasks.write_consent_files"
    assert tasks.write_consent_files() == 1
    assert list(ConsentFile.objects.values_list("feed_id", flat=True)) == [feed.pk]


# --- Admin ---------------------------------------------------------------------------------------


def staff(username: str, codenames: list[str]):
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="webhooks", codename__in=codenames))
    see_every_brand(user)
    return user


def test_admin_creates_a_feed_and_shows_the_secret_once(client, superuser, brand, tmall):
    client.force_login(superuser)
    response = client.post(
        "/admin/webhooks/consentfilefeed/add/", {"brand": brand.pk, "name": "POS", "store": tmall.pk,
                                                 "is_active": "on"}, follow=True,
    )  # fmt: skip
    feed = ConsentFileFeed.objects.get()
    assert feed.store == tmall and feed.created_by == "root"
    assert feed.secret in response.content.decode()
    assert feed.secret not in client.get(f"/admin/webhooks/consentfilefeed/{feed.pk}/change/").content.decode()
    assert AuditLog.objects.filter(action="consent_feed.created", object_id=str(feed.pk)).exists()


def test_admin_download_is_audited_and_needs_the_permission(client, feed, history, marketer):
    consent_file = run()
    name = f"{_stem(consent_file)}.csv"
    url = reverse("admin:webhooks_consentfile_download", args=[consent_file.pk, name])

    permitted = staff("ops", ["view_consentfile", "download_consentfile"])
    client.force_login(permitted)
    page = client.get(f"/admin/webhooks/consentfile/{consent_file.pk}/change/").content.decode()
    assert consent_file.hashes[name]["sha256"] in page and url in page
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == read(consent_file, ".csv")
    downloaded = AuditLog.objects.get(action="consent_file.downloaded")
    assert downloaded.actor_label == "ops" and downloaded.changes["file"] == name
    assert AuditLog.objects.filter(action="pii.viewed", changes__view="webhooks_consentfile_download").exists()
    elsewhere = reverse("admin:webhooks_consentfile_download", args=[consent_file.pk, "settings.csv"])
    assert client.get(elsewhere).status_code == 404  # only the set's own files

    client.force_login(marketer)
    assert client.get(url).status_code == 403
    client.force_login(staff("viewer", ["view_consentfile"]))
    assert client.get(url).status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_high_water_mark_waits_for_a_ledger_writer_still_open(brand, tmall, marketing, alice):
    """An event whose id was taken before the run but that commits after it must not be
    passed over: the run waits for the open writer instead of reading MAX(id) past it."""
    import threading
    import time

    from django.db import connection, transaction

    inserted, taken = threading.Event(), {}

    def slow_writer():
        try:
            with transaction.atomic():
                taken["id"] = consent(alice, marketing, "withdrawn").pk
                inserted.set()
                time.sleep(1.0)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    started = time.monotonic()
    high_water = feeds.ledger_high_water()
    writer.join()
    assert high_water >= taken["id"] and time.monotonic() - started > 0.5

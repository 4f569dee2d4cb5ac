"""Erasure is complete (DESIGN.md ⚑ deletion): after a deletion request is carried out, no
clear personal data of the person is left in any column of any table, in any session, or
in any file under MEDIA_ROOT; only keyed hashes and the ledger stay.

The person goes through everything that keeps copies: two member files (one uploaded in
the admin, one through ``import_members``) that make two records which a third merges,
a preview never confirmed, staff viewing them unmasked, webhook deliveries, a
suppression, a correction request in the privacy center; then they ask for deletion in
the privacy center and the task carries it out, as in production.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from django.urls import reverse

from cdp.models import AuditLog
from consent import services as consent_services
from consent.models import Suppression
from consent.queries import reachable_q
from imports.models import ImportJob
from members.erasure_sql import ErasedValue
from members.identities import erased_value
from members.models import Identity, Member, MergeEvent
from privacy import rights
from privacy.models import DataSubjectRequest
from tests.factories import MemberFactory, UserFactory
from webhooks import services as webhook_services
from webhooks.models import Delivery, Subscription

from .privacy_fixtures import purposes  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

NAME = "韩梅梅"
EMAIL = "meimei.han@example.com"
PHONE = "+8613812345678"
# Every form the phone is written in somewhere, the e-mail as a store sends it, the name,
# and the store member ids (identifiers of the person too).
TERMS = [
    PHONE, "13812345678", "8613812345678", "138 1234 5678", "138-1234-5678", "+86-138-1234-5678",
    EMAIL, NAME, "T-HMM-0001", "T-HMM-0002", "J-HMM-7777",
]  # fmt: skip


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


FILE_A = _csv(
    ["会员ID", "手机号码", "E-mail地址", "姓名", "城市", "入会时间", "短信营销授权", "备注"],
    [
        ["T-HMM-0001", "138 1234 5678", "", NAME, "上海", "2024-03-01", "1", f"老客户 {NAME} 13812345678"],
        ["T-HMM-0002", "", EMAIL, NAME, "上海", "2024-03-02", "1", ""],
        ["T-LL-0001", "13987654321", "lilei@example.com", "李雷", "北京", "2024-03-03", "1", ""],
    ],
)
FILE_B = _csv(
    ["member_id", "phone", "email", "name"], [["J-HMM-7777", "+86-138-1234-5678", "MeiMei.Han@Example.com", NAME]]
)
FILE_C = _csv(["会员ID", "手机", "姓名"], [["T-HMM-0003", "138-1234-5678", NAME]])


def scan_database() -> dict[str, int]:
    """Hits of TERMS per "table.column", over every text, varchar and JSON column of every
    model, and over the decoded and raw session rows."""
    hits: dict[str, int] = {}
    folded = [term.casefold() for term in TERMS]
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField | models.JSONField):
                continue
            for value in model._default_manager.values_list(field.attname, flat=True).iterator():
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                if any(term in text.casefold() for term in folded):
                    key = f"{model._meta.db_table}.{field.column}"
                    hits[key] = hits.get(key, 0) + 1
    from django.contrib.sessions.backends.db import SessionStore

    with connection.cursor() as cursor:
        cursor.execute("SELECT session_key, session_data FROM django_session")
        for _key, data in cursor.fetchall():
            decoded = json.dumps(SessionStore().decode(data), ensure_ascii=False, default=str)
            if any(term in f"{data}\n{decoded}".casefold() for term in folded):
                hits["django_session (raw SQL)"] = hits.get("django_session (raw SQL)", 0) + 1
    return hits


def scan_files(root: Path) -> dict[str, int]:
    hits: dict[str, int] = {}
    folded = [term.casefold() for term in TERMS]
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file():
            raw = path.read_bytes()
            text = "\n".join(raw.decode(codec, errors="ignore") for codec in ("utf-8-sig", "gb18030"))
            if any(term in text.casefold() for term in folded):
                hits[str(path.relative_to(root))] = 1
    return hits


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def webhook_receiver(monkeypatch, brand):
    """A subscriber of the brand whose receiver answers 200 and remembers what it got."""
    received: list[bytes] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        received.append(body)
        return 200, "ok"

    monkeypatch.setattr(webhook_services, "_post", post)
    Subscription.objects.create(
        brand=brand, url="https://hooks.example.com/cdp", secret="s3cret",
        events=["consent.changed", "member.merged", "member.erased"],
    )  # fmt: skip
    return received


def _staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _live_through_everything(
    *, superuser, privacy_officer, tmall, jd, media: Path, tmp_path: Path, capture
) -> tuple[Member, Client]:
    """Everything that leaves copies of the person, through the same doors as production."""
    admin = _staff_client(superuser)
    with capture(execute=True):
        # File A in the admin: upload, preview, confirm. Two records of the person.
        response = admin.post(
            reverse("admin:imports_importjob_import"),
            {"store": tmall.pk, "file": SimpleUploadedFile("会员.csv", FILE_A, content_type="text/csv")},
        )
        assert response.status_code == 200, response.content.decode()[:2000]
        job = ImportJob.objects.latest("pk")
        admin.post(reverse("admin:imports_importjob_confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE and job.created == 3, (
        job.rejected,
        job.errors_file and job.errors_file.read().decode(),
    )
    assert Member.objects.filter(name=NAME).count() == 2
    # File B through the command: one record with both phone and e-mail merges the two.
    path_b = tmp_path / "jd.csv"
    path_b.write_bytes(FILE_B)
    with capture(execute=True):
        call_command("import_members", str(path_b), "--store", jd.code, stdout=io.StringIO())
    member = Member.objects.get(identities__kind="phone", identities__value=PHONE)
    assert MergeEvent.objects.filter(survivor=member).exists()
    # File C previewed and never confirmed.
    admin.post(
        reverse("admin:imports_importjob_import"),
        {"store": tmall.pk, "file": SimpleUploadedFile("c.csv", FILE_C, content_type="text/csv")},
    )
    # A bounce of their address.
    consent_services.add_suppression(channel="email", value=EMAIL, reason=Suppression.Reason.BOUNCE)
    # A privacy officer looks at them, unmasked (audited with the member's name as object text).
    officer = _staff_client(privacy_officer)
    assert NAME in officer.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    event = MergeEvent.objects.filter(survivor=member).latest("pk")
    assert officer.get(reverse("admin:members_mergeevent_change", args=[event.pk])).status_code == 200
    # They sign in to the privacy center with their e-mail and ask for a correction.
    from allauth.account.models import EmailAddress

    user = UserFactory(username="meimei.han", email=EMAIL, first_name=NAME)
    EmailAddress.objects.create(user=user, email=EMAIL, verified=True, primary=True)
    assert rights.claim_verified_contacts(user).pk == member.pk
    shopper = Client()
    shopper.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = shopper.session
    session["last_contact"] = EMAIL  # what a sign-in flow may leave in the session
    session.save()
    response = shopper.post(reverse("privacy:correction"), {"details": f"我叫{NAME}，手机 13812345678"})
    assert response.status_code in (200, 302)
    assert DataSubjectRequest.objects.filter(member=member, kind="correction").exists()
    return member, shopper


def test_nothing_of_the_erased_person_is_left(
    superuser, privacy_officer, tmall, jd, purposes, media, tmp_path, webhook_receiver,  # noqa: F811
    django_capture_on_commit_callbacks,
):  # fmt: skip
    member, shopper = _live_through_everything(
        superuser=superuser, privacy_officer=privacy_officer, tmall=tmall, jd=jd, media=media, tmp_path=tmp_path,
        capture=django_capture_on_commit_callbacks,
    )  # fmt: skip
    assert Delivery.objects.exists() and webhook_receiver
    before_db, before_files = scan_database(), scan_files(media)
    # The scan sees what it should: the person is everywhere before.
    for where in ("members_member.name", "members_identity.value", "members_mergeevent.profile_changes",
                  "privacy_datasubjectrequest.details", "cdp_auditlog.object_repr", "webhooks_delivery.body",
                  "django_session (raw SQL)"):  # fmt: skip
        assert where in before_db, (where, before_db)
    assert len(before_files) >= 2, before_files

    # They ask for deletion in the privacy center; the task carries it out after commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = shopper.post(reverse("privacy:delete"), {"confirm": "on"})
    assert response.status_code == 200
    request = DataSubjectRequest.objects.get(member=member, kind="deletion")
    assert request.status == DataSubjectRequest.Status.COMPLETED, request.outcome

    after_db, after_files = scan_database(), scan_files(media)
    print(f"\nbefore: {sum(before_db.values())} rows in {len(before_db)} columns, {len(before_files)} files")
    print(f"before: {before_db}")
    print(f"after: {sum(after_db.values())} rows, {len(after_files)} files")
    assert after_db == {}, after_db
    assert after_files == {}, after_files

    # What stays, as proof and to keep them suppressed: keyed hashes, the ledger, Li Lei.
    assert Identity.objects.filter(value=erased_value("phone", PHONE)).exists()
    suppression = Suppression.objects.get()
    assert suppression.value_hash == erased_value("email", EMAIL) and suppression.value == ""
    assert member.consent_events.exists()
    assert Member.objects.filter(name="李雷", phone="+8613987654321").exists()
    assert AuditLog.objects.filter(action="pii.viewed", object_id=str(member.pk)).exists()


def test_the_sql_keyed_hash_is_erased_value(db):
    """The suppression filter hashes members' contact points in SQL: it must give exactly
    what ``erased_value`` gives (PostgreSQL's sha256 HMAC, SQLite's registered function)."""
    member = MemberFactory(phone=PHONE, email=EMAIL)
    hashed = (
        Member.objects.filter(pk=member.pk)
        .annotate(p=ErasedValue("phone", models.F("phone")), e=ErasedValue("email", models.F("email")))
        .values_list("p", "e")
        .get()
    )
    assert hashed == (erased_value("phone", PHONE), erased_value("email", EMAIL))
    blank = MemberFactory(phone="", email="")
    assert Member.objects.filter(pk=blank.pk).annotate(p=ErasedValue("phone", models.F("phone"))).get().p is None


def test_a_suppression_outlives_its_clear_value(brand):
    """Kept as a keyed hash, a suppression still keeps the address out of every send."""
    consent_services.add_suppression(channel="email", value="Bounce.Me@Example.com", reason="bounce")
    stored = Suppression.objects.get()
    assert stored.value == "b***@example.com" and "bounce.me" not in stored.value_hash
    suppressed = MemberFactory(email="bounce.me@example.com")
    reachable = MemberFactory(email="fine@example.com")
    found = set(Member.objects.filter(reachable_q(brand, "email")).values_list("pk", flat=True))
    assert reachable.pk in found and suppressed.pk not in found


def test_cancelling_a_preview_deletes_the_file_at_once(superuser, tmall, media):
    admin = _staff_client(superuser)
    admin.post(
        reverse("admin:imports_importjob_import"),
        {"store": tmall.pk, "file": SimpleUploadedFile("c.csv", FILE_C, content_type="text/csv")},
    )
    job = ImportJob.objects.get()
    stored = Path(job.file.path)
    assert stored.exists()
    response = admin.post(reverse("admin:imports_importjob_cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert not stored.exists() and not job.file and job.status == ImportJob.Status.FAILED
    # A cancelled preview can no longer be confirmed.
    assert admin.post(reverse("admin:imports_importjob_confirm", args=[job.pk])).status_code == 404


def test_files_are_deleted_after_the_retention_period(superuser, tmall, media, settings):
    import datetime as dt

    from django.utils import timezone

    from imports.tasks import delete_expired_import_files

    settings.IMPORT_FILE_RETENTION_DAYS = 30
    admin = _staff_client(superuser)
    for name in ("old.csv", "new.csv"):
        admin.post(
            reverse("admin:imports_importjob_import"),
            {"store": tmall.pk, "file": SimpleUploadedFile(name, FILE_C, content_type="text/csv")},
        )
    old, new = ImportJob.objects.order_by("pk")
    ImportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    old_path, new_path = Path(old.file.path), Path(new.file.path)
    assert delete_expired_import_files() == 1
    assert not old_path.exists() and new_path.exists()
    old.refresh_from_db()
    assert not old.file and AuditLog.objects.filter(action="imports.files_deleted", object_id=str(old.pk)).exists()

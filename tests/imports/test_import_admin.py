"""The admin's import page (upload, preview, confirm), jobs, error CSVs and the export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cdp.models import AuditLog
from consent.models import ConsentEvent
from imports.models import ImportJob
from members.models import Member, StoreMembership

from .import_helpers import HEADER, row, run_import, write_csv

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _csv(rows, header=None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def _upload(client, store, content: bytes, name="members.csv"):
    return client.post(
        reverse("admin:imports_importjob_import"),
        {"store": store.pk, "file": SimpleUploadedFile(name, content, content_type="text/csv"), "encoding": ""},
        HTTP_ACCEPT_LANGUAGE="en",  # the assertions read the English labels
    )


def test_upload_preview_confirm(client, superuser, tmall, purposes, django_assert_max_num_queries):
    client.force_login(superuser)
    assert client.get(reverse("admin:imports_importjob_import")).status_code == 200
    content = _csv([row("A1", phone="13800138000", name="张伟", consent_marketing_sms="1"), row("A2", phone="123")])
    with django_assert_max_num_queries(60):
        response = _upload(client, tmall, content)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Confirm the import" in page and "not a valid phone number" in page
    assert not Member.objects.exists()  # the preview wrote nothing
    job = ImportJob.objects.get()
    assert job.status == "pending"
    with django_assert_max_num_queries(80):
        response = client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.created, job.rejected, job.consent_events) == ("done", 1, 1, 1)
    assert ConsentEvent.objects.get().source_ref == f"import-job:{job.pk}"
    errors = client.get(reverse("admin:imports_importjob_errors", args=[job.pk]))
    # In the reader's language (the admin's default, zh-hans), as on the job page.
    assert errors.status_code == 200 and "不是有效的手机号".encode() in b"".join(errors.streaming_content)
    assert client.get(reverse("admin:imports_importjob_change", args=[job.pk])).status_code == 200
    assert client.get(reverse("admin:imports_importjob_changelist")).status_code == 200
    # Confirming twice does nothing more.
    assert client.post(reverse("admin:imports_importjob_confirm", args=[job.pk])).status_code == 404


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"name,phone\r\nx,13800138000\r\n", "m.csv", "no member id column"),
        (b"member_id,name\r\nA1,x\r\n", "m.xlsx", "not an Excel workbook"),
        (b"\x00\x01binary\x00" * 50, "m.csv", "binary"),
    ],
)
def test_unreadable_upload_is_a_400_and_writes_nothing(client, superuser, tmall, purposes, content, name, message):
    client.force_login(superuser)
    response = _upload(client, tmall, content, name)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Member.objects.exists()
    assert ImportJob.objects.get().status == "failed"


def test_form_errors_are_400(client, superuser, tmall):
    client.force_login(superuser)
    response = client.post(reverse("admin:imports_importjob_import"), {"store": tmall.pk})
    assert response.status_code == 400
    empty = _upload(client, tmall, b"")  # Django's own check: "The submitted file is empty."
    assert empty.status_code == 400 and not ImportJob.objects.exists()


def test_big_file_becomes_a_background_job(
    client, superuser, tmall, purposes, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_ASYNC_THRESHOLD_BYTES = 100
    client.force_login(superuser)
    content = _csv([row(f"A{i}", phone=f"1380013{i:04d}") for i in range(20)])
    response = _upload(client, tmall, content)
    assert response.status_code == 200 and "in the background" in response.content.decode()
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:imports_importjob_confirm", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.created, job.rows_done, job.progress) == ("done", 20, 20, 100)
    assert AuditLog.objects.filter(action="members.import_queued").exists()


def test_a_stale_running_job_is_claimed_again_and_restarts_without_duplicates(tmall, purposes, tmp_path, settings):
    import datetime as dt

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from imports import jobs

    content = _csv([row("A1", phone="13800138000", consent_marketing_sms="1")])
    job = ImportJob.objects.create(store=tmall, original_name="m.csv", size=len(content))
    job.file.save("m.csv", ContentFile(content))
    assert jobs.run_job(job.pk) is not None
    # The worker "died" after the rows were written: the job still says running.
    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    again = jobs.run_job(job.pk)
    assert again is not None and (again.created, again.consent_events) == (0, 0)
    assert Member.objects.count() == 1 and ConsentEvent.objects.count() == 1
    assert ImportJob.objects.get(pk=job.pk).attempts == 2
    # A job running right now is not taken twice.
    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    assert jobs.run_job(job.pk) is None


def test_staff_without_permission_cannot_import_or_export(client, marketer, tmall):
    client.force_login(marketer)
    assert client.get(reverse("admin:imports_importjob_import")).status_code == 403
    assert client.get(reverse("admin:imports_importjob_export"), {"store": tmall.pk}).status_code == 403


def test_export_is_formula_safe_and_reimports_unchanged(client, superuser, tmall, purposes, tmp_path):
    rows = [
        row("A1", phone="138 0013 8000", email="a@example.com", name="=HYPERLINK(\"x\")", gender="男",
            birthday="1990-01-02", province="上海", city="上海", tier="金卡", points="10", wechat_unionid="oUnion123456"),
        row("A2", phone="13900139000", name="-李娜", joined_at="2024-03-01 10:00:05"),
    ]  # fmt: skip
    run_import(write_csv(tmp_path / "m.csv", rows), "lotus-tmall")
    client.force_login(superuser)
    assert client.get(reverse("admin:imports_importjob_export")).status_code == 400
    response = client.get(reverse("admin:imports_importjob_export"), {"store": tmall.pk})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    lines = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert lines[0] == ["member_id", "phone", "email", "name", "gender", "birthday", "province", "city", "joined_at",
                        "tier", "points", "wechat_unionid"]  # fmt: skip
    assert lines[1][:4] == ["A1", "'+8613800138000", "a@example.com", '\'=HYPERLINK("x")']
    assert lines[2][3] == "'-李娜"
    exported = tmp_path / "exported.csv"
    exported.write_text(body, encoding="utf-8")
    before = list(StoreMembership.objects.values_list("store_member_id", "joined_at", "tier", "points", "member__name",
                                                      "member__phone", "member__birth_date"))  # fmt: skip
    counts = run_import(exported, "lotus-tmall")
    assert (counts["created"], counts["updated"], counts["rejected"], counts["consent_events"]) == (0, 0, 0, 0)
    after = list(StoreMembership.objects.values_list("store_member_id", "joined_at", "tier", "points", "member__name",
                                                     "member__phone", "member__birth_date"))  # fmt: skip
    assert after == before

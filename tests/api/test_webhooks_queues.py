"""A withdrawal's webhook does not wait for imports (cdp/queues.py): the import worker is
stuck on a file and another import waits in the ``imports`` queue, and the worker of the
quick queues still delivers the withdrawal to a real receiver. Then the imports finish.
Real ``celery worker`` processes, Redis, PostgreSQL."""

from __future__ import annotations

import pytest
import redis
from django.core.files.base import ContentFile

from cdp import queues
from cdp.enqueue import enqueue_on_commit
from consent import services as consent_services
from imports.models import ImportJob
from tests.imports.import_helpers import row, write_csv
from tests.workers import database_url, start_worker, stop_worker, wait_for
from webhooks import services
from webhooks.models import Delivery

from .receiver import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def queued_job(store, tmp_path, name: str, first_phone: int) -> ImportJob:
    rows = [row(f"{name}{n}", phone=f"1390000{first_phone + n:04d}") for n in range(20)]
    content = write_csv(tmp_path / f"{name}.csv", rows).read_bytes()
    job = ImportJob.objects.create(store=store, original_name=f"{name}.csv", size=len(content), created_by="root")
    job.file.save(f"{name}.csv", ContentFile(content))
    return job


def test_a_withdrawal_is_delivered_while_the_imports_queue_is_blocked(
    real_celery, brand, tmall, marketing, alice, settings, tmp_path
):
    import psycopg

    settings.MEDIA_ROOT = tmp_path / "media"
    media = str(settings.MEDIA_ROOT)
    stuck, waiting = queued_job(tmall, tmp_path, "A", 0), queued_job(tmall, tmp_path, "B", 100)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    # The first import's worker blocks on the job row (as behind a long file), the second
    # import waits in the queue behind it.
    blocker = psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(f"SELECT id FROM {ImportJob._meta.db_table} WHERE id = %s FOR UPDATE", [stuck.pk])
    with Receiver() as receiver:
        services.create_subscription(brand=brand, url=receiver.url, events=["consent.changed"])
        imports_worker = start_worker(queues=[queues.IMPORTS], MEDIA_ROOT=media)
        quick_worker = None
        try:
            enqueue_on_commit("imports.tasks.run_import_job", stuck.pk)
            wait_for(lambda: broker.llen(queues.IMPORTS) == 0, 30, "the import worker to take the first file")
            enqueue_on_commit("imports.tasks.run_import_job", waiting.pk)
            assert broker.llen(queues.IMPORTS) == 1
            quick_worker = start_worker(queues=queues.QUICK, MEDIA_ROOT=media)

            consent_services.record_consent(
                member=alice, brand=brand, purpose=marketing, channel="sms", action="withdrawn",
                source_type="privacy_center", evidence={"ip": "203.0.113.9"},
            )  # fmt: skip
            wait_for(lambda: Delivery.objects.filter(status="succeeded").exists(), 60, "the withdrawal's webhook")

            # Delivered while both imports still wait: one on its lock, one in the queue.
            assert [p["data"]["event"]["action"] for p in receiver.payloads()] == ["withdrawn"]
            assert set(ImportJob.objects.values_list("status", flat=True)) == {"pending"}
            assert broker.llen(queues.IMPORTS) == 1
            blocker.rollback()
            wait_for(lambda: ImportJob.objects.filter(status="done").count() == 2, 120, "both imports")
        finally:
            blocker.close()
            stop_worker(imports_worker)
            if quick_worker is not None:
                stop_worker(quick_worker)
    assert ImportJob.objects.get(pk=waiting.pk).created == 20

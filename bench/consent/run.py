"""Consent ledger benchmark (issue: consent as legal evidence).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/consent/run.py

Creates a fresh database ``cdp_bench_consent`` next to the one DATABASE_URL names, then:
1. ``record_consent`` from 4 writer processes at once → events/s in total;
2. fills the ledger to --verify-events with valid chained events and times
   ``verify_ledger`` → events/s;
3. ``can_contact`` on random members → median and p99 latency, queries per call.
Targets: ≥ 2,000 events/s, ≥ 100,000 events/s, < 2 ms with ≤ 3 queries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_consent"


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("CDP_TESTING", "1")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def _writer(url: str, member_ids: list[int], events: int, seed: int, queue: mp.Queue, ready, go) -> None:
    _setup_django(url)
    from django.utils import timezone

    from consent import services
    from members.models import Brand, Member

    brand = Brand.objects.get(code="bench")
    rng = random.Random(seed)
    now = timezone.now()
    members = list(Member.objects.filter(pk__in=member_ids))
    from consent.models import Notice, Purpose

    purpose = Purpose.objects.get(brand=brand, code="marketing")
    notice = Notice.objects.get(brand=brand, purpose=purpose)
    ready.release()
    go.wait()  # measure sustained writing, not process start-up and Django set-up
    started = time.perf_counter()
    for i in range(events):
        services.record_consent(
            member=rng.choice(members),
            brand=brand,
            purpose=purpose,
            notice=notice,
            channel="sms",
            action=rng.choice(["granted", "withdrawn"]),
            source_type="api_key",
            source_ref="bench",
            occurred_at=now - dt.timedelta(seconds=rng.randint(0, 86400)),
            evidence={"ip": "127.0.0.1", "row": i},
        )
    queue.put(time.perf_counter() - started)


def _fill_ledger(target: int, members: int) -> None:
    """Append valid chained events in bulk until the ledger holds ``target`` events."""
    from django.db import transaction
    from django.utils import timezone

    from consent import ledger
    from consent.models import ChainHead, ConsentEvent, Notice, Purpose
    from members.models import Brand, Member

    brand = Brand.objects.get(code="bench")
    purpose = Purpose.objects.get(brand=brand, code="marketing")
    notice = Notice.objects.get(brand=brand, purpose=purpose)
    missing = target - ConsentEvent.objects.count()
    if missing <= 0:
        return
    heads = {h.member_id: (h.seq, h.hash) for h in ChainHead.objects.all()}
    ids = list(Member.objects.values_list("pk", flat=True)[:members])
    now = timezone.now()
    rng = random.Random(3)
    batch: list[ConsentEvent] = []
    for i in range(missing):
        member_id = ids[i % len(ids)]
        seq, prev = heads.get(member_id, (0, ledger.GENESIS))
        event = ConsentEvent(
            member_id=member_id,
            brand=brand,
            purpose=purpose,
            channel="sms",
            action="granted" if rng.random() < 0.7 else "withdrawn",
            occurred_at=now - dt.timedelta(seconds=rng.randint(0, 10**7)),
            recorded_at=now,
            source_type="import_job",
            source_ref="job-1",
            notice=notice,
            evidence={"file_sha256": "ab" * 32, "row": i},
            seq=seq + 1,
            prev_hash=prev,
        )
        event.hash = ledger.hash_event(event)
        heads[member_id] = (event.seq, event.hash)
        batch.append(event)
        if len(batch) == 20000:
            ConsentEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        ConsentEvent.objects.bulk_create(batch)
    with transaction.atomic():
        ChainHead.objects.all().delete()
        ChainHead.objects.bulk_create(
            [ChainHead(member_id=m, seq=s, hash=h) for m, (s, h) in heads.items()], batch_size=20000
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--events-per-writer", type=int, default=5000)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=2000)
    args = parser.parse_args()

    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://… (the benchmark creates its own database next to it)")
    recreate_database(admin_url, DB_NAME)
    url = bench_url(admin_url, DB_NAME)
    _setup_django(url)
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    from consent import ledger, services, verification
    from consent.models import ConsentEvent, Notice, Purpose
    from consent.queries import can_contact
    from members.models import Brand, Member

    call_command("migrate", verbosity=0)
    brand = Brand.objects.create(code="bench", name="Bench")
    purpose = Purpose.objects.create(
        brand=brand, code="marketing", name="M", channels=["sms", "email"], is_marketing=True
    )
    services.publish_notice(
        brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title="t", body="b"
    )
    Member.objects.bulk_create(
        [Member(name=f"m{i}", phone=f"+86138{i:08d}", birth_date=dt.date(1990, 1, 1)) for i in range(args.members)],
        batch_size=10000,
    )
    ids = list(Member.objects.values_list("pk", flat=True))
    connections.close_all()
    print(f"machine: {os.cpu_count()} cores; PostgreSQL database {DB_NAME}; {args.members:,} members")

    # 1. concurrent writers
    queue: mp.Queue = mp.Queue()
    ready, go = mp.Semaphore(0), mp.Event()
    slices = [ids[i :: args.writers] for i in range(args.writers)]
    procs = [
        mp.Process(target=_writer, args=(url, slices[i], args.events_per_writer, i, queue, ready, go))
        for i in range(args.writers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    total = args.writers * args.events_per_writer
    print(
        f"record_consent: {total:,} events by {args.writers} processes in {wall:.2f} s = {total / wall:,.0f} events/s (target ≥ 2,000)"
    )

    # 2. verification
    _fill_ledger(args.verify_events, args.members)
    ledger.create_checkpoint()
    count = ConsentEvent.objects.count()
    started = time.perf_counter()
    result = verification.verify_ledger()
    seconds = time.perf_counter() - started
    assert result.ok, result.first_error
    print(
        f"verify_consent_ledger: {result.events_checked:,} events in {seconds:.2f} s = {result.events_checked / seconds:,.0f} events/s (target ≥ 100,000); ledger holds {count:,}"
    )

    # 3. can_contact
    rng = random.Random(11)
    timings, queries = [], []
    for _ in range(args.checks):
        member_id = rng.choice(ids)
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            can_contact(member_id, brand.pk, purpose, "sms")
            timings.append((time.perf_counter() - t0) * 1000)
        queries.append(len(ctx.captured_queries))
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"can_contact: median {statistics.median(timings):.3f} ms, p99 {p99:.3f} ms, at most {max(queries)} queries (target < 2 ms, ≤ 3)"
    )


if __name__ == "__main__":
    main()

"""Consent ledger benchmark (issue: consent as legal evidence; issue 27 item 4).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/consent/run.py

Creates a fresh database ``cdp_bench_consent`` next to the one DATABASE_URL names, then,
``--runs`` times each (the median is reported):

0. the anchor, what the machine does: 4 processes each committing a one-row INSERT per
   transaction (the commit, its WAL flush included, is the bound of any durable
   one-event-per-transaction write);
1. ``record_consent`` from 4 writer processes at once, one event per call and
   transaction, as the privacy center, a checkout or an unsubscribe link writes →
   events/s in total, and its ratio to the anchor;
2. ``record_consents`` from 4 writer processes at once, ``--batch-size`` events per call
   with external ids, as ``POST /api/v1/consent-events/`` writes a burst of a sale day
   → events/s in total;
3. fills the ledger to --verify-events with valid chained events and times
   ``verify_ledger`` → events/s;
4. ``can_contact`` on random members → median and p99 latency, queries per call.

Targets: writes ≥ 5,000 events/s (goal 10,000) by 4 writers, verification
≥ 200,000 events/s, checks < 2 ms with ≤ 3 queries. The last line is
``BENCH_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _writer(
    url: str, mode: str, member_ids: list[int], events: int, batch: int, seed: int, queue: mp.Queue, ready, go
) -> None:
    _setup_django(url)
    from django.db import connection
    from django.utils import timezone

    from consent import services
    from consent.models import Notice, Purpose
    from members.models import Brand, Member

    brand = Brand.objects.get(code="bench")
    rng = random.Random(seed)
    now = timezone.now()
    members = list(Member.objects.filter(pk__in=member_ids))
    purpose = Purpose.objects.get(brand=brand, code="marketing")
    notice = Notice.objects.get(brand=brand, purpose=purpose)
    ready.release()
    go.wait()  # measure sustained writing, not process start-up and Django set-up
    started = time.perf_counter()
    if mode == "anchor":
        raw = connection.connection
        raw.autocommit = True
        for i in range(events):
            raw.execute("INSERT INTO bench_commit (n) VALUES (%s)", [i])  # one commit each
    elif mode == "single":
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
    else:
        for start in range(0, events, batch):
            items = [
                services.ConsentInput(
                    member=rng.choice(members),
                    purpose=purpose,
                    notice=notice,
                    channel="sms",
                    action=rng.choice(["granted", "withdrawn"]),
                    occurred_at=now - dt.timedelta(seconds=rng.randint(0, 86400)),
                    evidence={"ip": "127.0.0.1", "row": i},
                    external_id=f"bench-{seed}-{i}",
                )
                for i in range(start, min(start + batch, events))
            ]
            services.record_consents(items, brand=brand, source_type="api_key", source_ref="bench")
    queue.put(time.perf_counter() - started)


def _write(url: str, mode: str, ids: list[int], writers: int, events: int, batch: int, seed: int) -> float:
    """Events (or commits) per second of ``writers`` processes writing ``events`` each."""
    queue: mp.Queue = mp.Queue()
    ready, go = mp.Semaphore(0), mp.Event()
    slices = [ids[i::writers] for i in range(writers)]
    procs = [
        mp.Process(target=_writer, args=(url, mode, slices[i], events, batch, seed * 100 + i, queue, ready, go))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=300):
            for p in procs:
                p.kill()
            sys.exit(f"a {mode} writer did not start")
    started = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            sys.exit(f"a {mode} writer failed")
    wall = time.perf_counter() - started
    return writers * events / wall


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
    parser.add_argument("--batch-size", type=int, default=100, help="events per record_consents call")
    parser.add_argument("--batch-events-per-writer", type=int, default=20000)
    parser.add_argument("--verify-events", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
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
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        sync = cursor.fetchone()[0]
        cursor.execute("CREATE TABLE bench_commit (id bigserial PRIMARY KEY, n integer)")  # the anchor's
    connections.close_all()
    print(
        f"machine: {os.cpu_count()} cores; PostgreSQL database {DB_NAME} (synchronous_commit={sync}); "
        f"{args.members:,} members; {args.writers} writers; {args.runs} runs"
    )

    w, n = args.writers, args.events_per_writer
    figures: dict[str, list[float]] = {"anchor": [], "single": [], "batch": []}
    loads = []
    for run in range(args.runs):
        loads.append(_load())
        anchor = _write(url, "anchor", ids, w, n, 1, run)
        single = _write(url, "single", ids, w, n, 1, run)
        batch = _write(url, "batch", ids, w, args.batch_events_per_writer, args.batch_size, run)
        figures["anchor"].append(anchor)
        figures["single"].append(single)
        figures["batch"].append(batch)
        print(
            f"run {run + 1} (load {loads[-1]}): commits {anchor:,.0f}/s; record_consent {single:,.0f} events/s "
            f"({single / anchor:.2f}× commits); record_consents ×{args.batch_size} {batch:,.0f} events/s"
        )

    # verification
    _fill_ledger(args.verify_events, args.members)
    ledger.create_checkpoint()
    count = ConsentEvent.objects.count()
    verify = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = verification.verify_ledger()
        seconds = time.perf_counter() - started
        assert result.ok, result.first_error
        verify.append(result.events_checked / seconds)
    print("verify_consent_ledger: " + ", ".join(f"{v:,.0f}" for v in verify) + f" events/s; ledger holds {count:,}")

    # can_contact
    rng = random.Random(11)
    medians, p99s, queries = [], [], []
    for _ in range(args.runs):
        timings = []
        for _ in range(args.checks):
            member_id = rng.choice(ids)
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                can_contact(member_id, brand.pk, purpose, "sms")
                timings.append((time.perf_counter() - t0) * 1000)
            queries.append(len(ctx.captured_queries))
        timings.sort()
        medians.append(statistics.median(timings))
        p99s.append(timings[int(len(timings) * 0.99) - 1])

    median = {name: statistics.median(values) for name, values in figures.items()}
    result_figures = {
        "write_events_per_s": round(median["single"]),
        "writers": w,
        "write_commit_anchor_per_s": round(median["anchor"]),
        "write_ratio_to_commits": round(statistics.median(s / a for s, a in zip(figures["single"], figures["anchor"], strict=True)), 3),
        "batch_write_events_per_s": round(median["batch"]),
        "batch_size": args.batch_size,
        "verify_events_per_s": round(statistics.median(verify)),
        "check_median_ms": round(statistics.median(medians), 3),
        "check_p99_ms": round(statistics.median(p99s), 3),
        "check_max_queries": max(queries),
        "load": loads,
    }  # fmt: skip
    print(f"\nmedian of {args.runs} runs ({os.cpu_count()} CPUs; load before each run: {'; '.join(loads)}):")
    print(f"  commits, {w} processes, one-row INSERT each:      {median['anchor']:8,.0f} /s (anchor)")
    print(
        f"  record_consent, {w} writers, 1 event/transaction: {median['single']:8,.0f} events/s "
        f"({result_figures['write_ratio_to_commits']:.2f}× the anchor)"
    )
    print(f"  record_consents, {w} writers, {args.batch_size}/call:        {median['batch']:8,.0f} events/s")
    print(f"  verify_consent_ledger:                            {result_figures['verify_events_per_s']:8,} events/s")
    print(
        f"  can_contact: median {result_figures['check_median_ms']:.3f} ms, p99 {result_figures['check_p99_ms']:.3f} ms, "
        f"at most {max(queries)} queries"
    )
    ok = median["batch"] >= 5000 and result_figures["verify_events_per_s"] >= 200_000
    print("targets: writes ≥ 5,000 events/s (batched path), verify ≥ 200,000 events/s:", "PASS" if ok else "FAIL")
    print("BENCH_RESULT " + json.dumps({"name": "consent", "ok": ok, "figures": result_figures}))


if __name__ == "__main__":
    main()

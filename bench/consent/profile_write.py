"""Profile of one ``record_consent`` call as the benchmark's writers make it (issue 27
item 1): statements and transactions per event, and where the time goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/consent/profile_write.py

Works in a database of its own, ``cdp_bench_consent_profile``. Statements are counted at
the server (``pg_stat_database.xact_commit`` and a statement log through psycopg) because
``ledger.append`` runs a server-prepared statement that Django's query log does not see.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_consent_profile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://…")
    recreate_database(admin_url, DB_NAME)
    os.environ["DATABASE_URL"] = bench_url(admin_url, DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("CDP_TESTING", "1")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from consent import services
    from consent.models import Notice, Purpose
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
        [Member(name=f"m{i}", phone=f"+86138{i:08d}", birth_date=dt.date(1990, 1, 1)) for i in range(args.members)]
    )
    members = list(Member.objects.all())
    notice = Notice.objects.get(brand=brand, purpose=purpose)
    rng = random.Random(1)
    now = timezone.now()

    def one(i: int) -> None:
        services.record_consent(
            member=rng.choice(members), brand=brand, purpose=purpose, notice=notice, channel="sms",
            action=rng.choice(["granted", "withdrawn"]), source_type="api_key", source_ref="bench",
            occurred_at=now - dt.timedelta(seconds=rng.randint(0, 86400)), evidence={"ip": "127.0.0.1", "row": i},
        )  # fmt: skip

    for i in range(200):  # warm: prepared statement, caches
        one(i)

    # Every statement the connection sends, the prepared append included.
    statements: list[str] = []
    raw = connection.connection

    def log(sql: str) -> None:
        statements.append(" ".join(sql.split())[:90])

    def stats() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = current_database()")
            return cursor.fetchone()

    n = 200
    orig_execute = type(raw.cursor()).execute

    def execute(self, query, params=None, **kwargs):
        log(query if isinstance(query, str) else str(query))
        return orig_execute(self, query, params, **kwargs)

    type(raw.cursor()).execute = execute
    before = stats()
    with CaptureQueriesContext(connection) as ctx:
        for i in range(n):
            one(1000 + i)
    type(raw.cursor()).execute = orig_execute
    time.sleep(0.7)  # pg_stat counters are flushed by the backend at the end of a transaction / every 500 ms
    after = stats()
    print(f"per record_consent, over {n} calls:")
    print(f"  statements seen by Django's query log: {len(ctx.captured_queries) / n:.2f}")
    print(f"  statements sent by psycopg (all):        {len(statements) / n:.2f}")
    print(f"  commits (pg_stat_database):              {(after[0] - before[0] - 1) / n:.2f}")
    print(f"  rows inserted:                           {(after[1] - before[1]) / n:.2f}")
    kinds: dict[str, int] = {}
    for sql in statements:
        kinds[sql[:60]] = kinds.get(sql[:60], 0) + 1
    for sql, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"    {count / n:5.2f}  {sql}")

    started = time.perf_counter()
    for i in range(args.events):
        one(5000 + i)
    wall = time.perf_counter() - started
    print(
        f"one writer: {args.events} events in {wall:.2f} s = {args.events / wall:,.0f} events/s, {wall / args.events * 1000:.3f} ms each"
    )

    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.events):
        one(20000 + i)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print(out.getvalue())

    # The batch form, as the API's POST /api/v1/consent-events/ calls it.
    size = args.batch_size

    def batch(start: int) -> None:
        items = [
            services.ConsentInput(
                member=rng.choice(members), purpose=purpose, notice=notice, channel="sms",
                action=rng.choice(["granted", "withdrawn"]),
                occurred_at=now - dt.timedelta(seconds=rng.randint(0, 86400)),
                evidence={"ip": "127.0.0.1", "row": start + i},
            )
            for i in range(size)
        ]  # fmt: skip
        services.record_consents(items, brand=brand, source_type="api_key", source_ref="bench")

    batch(0)
    statements.clear()
    type(raw.cursor()).execute = execute
    before = stats()
    with CaptureQueriesContext(connection) as ctx:
        batch(size)
    type(raw.cursor()).execute = orig_execute
    time.sleep(0.7)
    after = stats()
    print(f"per record_consents batch of {size}:")
    print(f"  statements seen by Django's query log: {len(ctx.captured_queries)}")
    print(f"  statements sent by psycopg (all):        {len(statements)}")
    print("  commits: 1 (the batch's transaction)")
    for sql in statements:
        print(f"    {sql}")
    batches = max(args.events // size, 1)
    started = time.perf_counter()
    for b in range(batches):
        batch(100000 + b * size)
    wall = time.perf_counter() - started
    print(
        f"one writer, batches of {size}: {batches * size} events in {wall:.2f} s = {batches * size / wall:,.0f} events/s"
    )
    profiler = cProfile.Profile()
    profiler.enable()
    for b in range(batches):
        batch(200000 + b * size)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


if __name__ == "__main__":
    main()

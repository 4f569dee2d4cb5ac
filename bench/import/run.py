"""Member import benchmark (issue 5: bulk import of store member files).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/import/run.py [--rows N]

Creates a fresh database ``cdp_bench_import`` (``--database NAME`` for another) next to
the one DATABASE_URL names, generates the files (bench/import/generate.py) if they are
missing, prints the server settings the figures depend on most, then:

1. imports ``other.csv`` (the JD store, 20% of the people) so the big file meets people
   it already knows (not timed as the result);
2. imports ``members.csv`` (--rows rows, default 1,000,000) with ``manage.py
   import_members --json`` in a child process: rows/s end to end, the child's peak RSS,
   its own CPU seconds and the WAL the server wrote (bytes of WAL repeat from run to run
   where times on a shared machine drift by ±15 %); then checks ``verify_consent_ledger``
   and ``rebuild_consent_state --check``;
3. imports the first --baseline-rows (100,000) rows of the same file into a fresh store
   through django-import-export's own ``Resource.import_data`` (a ModelResource over
   Member with the file's profile columns: no identity resolution, memberships or
   consent, so it does less work than our import) and prints the ratio.
Targets: 1M rows < 120 s (≥ 8,500 rows/s), peak RSS < 1 GiB, ≥ 15× import_data.
``--baseline-rows 0`` skips step 3 (quicker while iterating). Figures: bench/README.md
"Importing member files".
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_import"
PYTHON = sys.executable


# The tasks an import sets off (double opt-in mails for e-mail grants, webhooks) go to a
# Redis database of the benchmark's own, as in production, where a worker sends them: run
# in-process they would put rendering and sending tens of thousands of mails inside the
# timed import (287 rows/s instead of thousands). Emptied before and after each run.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _env(url: str) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=url, CDP_TESTING="1", DJANGO_SETTINGS_MODULE="cdp.settings",
                REDIS_URL=BENCH_REDIS_URL, CELERY_TASK_ALWAYS_EAGER="0")  # fmt: skip


def _empty_queue() -> int:
    """Drop what the runs queued (nobody consumes it); returns the tasks dropped."""
    import redis

    client = redis.Redis.from_url(BENCH_REDIS_URL)
    # Every queue's list (cdp/queues.py: webhooks, mail, …).
    tasks = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
    client.flushdb()
    return tasks


def _manage(url: str, *args: str) -> str:
    out = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args], env=_env(url), cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout


def _setup(url: str) -> None:
    _manage(url, "migrate", "--noinput", "-v", "0")
    code = """
from members.models import Brand, Store
from consent.models import Notice, Purpose
from consent import services
brand = Brand.objects.create(code="bench", name="Bench")
for code, platform in (("bench-tmall", "tmall"), ("bench-jd", "jd"), ("bench-baseline", "pos")):
    Store.objects.create(brand=brand, code=code, name=code, platform=platform)
for code, channels in (("marketing", ["sms", "email"]), ("personalization", [])):
    purpose = Purpose.objects.create(brand=brand, code=code, name=code, channels=channels)
    services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                            title=code, body="bench notice")
"""
    _manage(url, "shell", "-c", code)


@dataclass
class Run:
    counts: dict
    wall: float
    peak: int  # bytes: the child's peak RSS
    cpu: float  # seconds: the child's user + system CPU (the import's Python)
    wal: int  # bytes of WAL the server wrote meanwhile: repeatable where times drift


def _row(url: str, sql: str, params: list) -> tuple:
    """One row of one query on the server, on a connection of its own."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()


def _wal(url: str, since: str = "0/0") -> tuple[str, int]:
    """The server's WAL position now, and the bytes written since ``since``."""
    now, written = _row(
        url, "SELECT pg_current_wal_lsn()::text, pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [since]
    )
    return now, int(written)


SERVER_SETTINGS = ("server_version", "shared_buffers", "max_wal_size", "checkpoint_timeout", "synchronous_commit")


def _server(url: str) -> str:
    """The server settings that move these figures most: a server tuned for loading
    (``shared_buffers`` a quarter of the memory, a large ``max_wal_size``) wrote 29 % less
    WAL on the 1,000,000-row file and took 203 s instead of 237 s (bench/README.md, "Importing
    member files")."""
    return _row(
        url, "SELECT string_agg(n || ' ' || current_setting(n), ', ' ORDER BY i) FROM unnest(%s::text[]) "
        "WITH ORDINALITY AS s(n, i)", [list(SERVER_SETTINGS)],
    )[0]  # fmt: skip


def _import(url: str, path: Path, store: str) -> Run:
    """One import in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wal, _ = _wal(url)
    started = time.perf_counter()
    stdout = _manage(url, "import_members", str(path), "--store", store, "--json")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if after.ru_maxrss <= before.ru_maxrss:
        print("  (peak RSS not above an earlier child's; reported value is the maximum so far)")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    counts = json.loads(stdout.strip().splitlines()[-1])
    return Run(counts, wall, after.ru_maxrss * 1024, cpu, _wal(url, since=wal)[1])


def _baseline(url: str, path: Path, rows: int) -> float:
    """django-import-export's own import_data on the first ``rows`` rows, in-process."""
    os.environ.update(_env(url))
    import django

    django.setup()
    import tablib
    from import_export import fields, resources

    from members.models import Member

    class MemberRowResource(resources.ModelResource):
        name = fields.Field(attribute="name", column_name="姓名")
        phone = fields.Field(attribute="phone", column_name="手机号")
        email = fields.Field(attribute="email", column_name="邮箱")
        province = fields.Field(attribute="province", column_name="省份")
        city = fields.Field(attribute="city", column_name="城市")

        class Meta:
            model = Member
            fields = ("name", "phone", "email", "province", "city")
            import_id_fields = ("phone",)

    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        data = tablib.Dataset(*itertools.islice(reader, rows), headers=header)
    started = time.perf_counter()
    result = MemberRowResource().import_data(data, dry_run=False, raise_errors=False)
    seconds = time.perf_counter() - started
    print(f"  import_data: {len(data):,} rows in {seconds:.1f} s, {result.totals}")
    return len(data) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000, help="0 skips the comparison")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--database", default=DB_NAME, help=f"the benchmark's own database (default {DB_NAME})")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://… (the benchmark creates its own database next to it)")
    data = args.data / str(args.rows)
    main_path, other_path = data / "members.csv", data / "other.csv"
    if not main_path.exists() or not other_path.exists():
        print(f"generating {args.rows:,} rows into {data} …")
        subprocess.run([PYTHON, str(Path(__file__).parent / "generate.py"), "--rows", str(args.rows), "--out", str(data)],
                       check=True)  # fmt: skip
    url = bench_url(admin_url, args.database)
    print(f"database {args.database}; files in {data}")
    print(f"server: {_server(admin_url)}")
    recreate_database(admin_url, args.database)
    _empty_queue()
    _setup(url)

    other = _import(url, other_path, "bench-jd")
    print(f"1. other store ({other.counts['rows']:,} rows): {other.wall:.1f} s, {other.counts}")
    run = _import(url, main_path, "bench-tmall")
    rate = run.counts["rows"] / run.wall
    print(
        f"2. member file: {run.counts['rows']:,} rows in {run.wall:.1f} s = {rate:,.0f} rows/s; "
        f"peak RSS {run.peak / 2**20:,.0f} MiB"
    )
    print(f"   the import's own CPU {run.cpu:.1f} s (user + system); WAL {run.wal / 1e6:,.0f} MB")
    print(f"   {run.counts}")
    print("   " + _manage(url, "verify_consent_ledger").strip())
    print("   " + _manage(url, "rebuild_consent_state", "--check").strip())
    print(f"   tasks queued for a worker (opt-in mails, webhooks), dropped: {_empty_queue():,}")
    figures = {"rows": run.counts["rows"], "rows_per_s": round(rate), "peak_rss_mib": round(run.peak / 2**20)}
    if args.baseline_rows > 0:
        baseline = _baseline(url, main_path, args.baseline_rows)
        print(
            f"3. django-import-export import_data: {baseline:,.0f} rows/s; ours {rate:,.0f} rows/s = "
            f"{rate / baseline:.1f}×"
        )
        figures.update(import_data_rows_per_s=round(baseline), ratio=round(rate / baseline, 2))
    print("BENCH_RESULT " + json.dumps({"name": "member_import", "figures": figures}))


if __name__ == "__main__":
    main()

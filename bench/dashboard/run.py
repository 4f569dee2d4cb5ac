"""Admin dashboard benchmark (issue 9: "the page stays under 1 s with 1,000,000 members").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_dashboard \\
        .venv/bin/python bench/dashboard/run.py [--members 1000000] [--runs 5] [--regenerate]

The database DATABASE_URL names is the benchmark's own (PostgreSQL only). Its data is the
segments benchmark's generator (``bench/segments/run.py``: brand ``bench`` with 10 stores
on 8 platforms and a second brand, 1,000,000 members, 5,000,000 orders over two years,
3,000,000 consent events and states), reused while its counts match. This script adds
what the dashboard reads and that generator does not make: withdrawals from every kind
of source over the last year (2 % of members), 20,000 data requests in every status with
due dates around today, and the monthly lifecycle snapshots of the last 12 months
(taken with ``insights.services.take_lifecycle_snapshot``, timed).

Measured, ``--runs`` times each, median printed with every run listed:
* cold: the cache is cleared, then ``GET /admin/`` for a superuser with brand ``bench``
  and the last 90 days, then 365 days (every figure of the page computed from the stored
  figures and daily counts; one request on the other brand first warms the process);
* warm: the same request again (figures from the cache);
* each dashboard query alone (``insights.queries``): those the page runs, then those of
  the nightly refresh (``insights.services.refresh_figures``, also timed as a whole once
  per brand before measuring).
Requests go through Django's test client in this process (the whole view, templates and
middleware; no network). The cache is Django's in-memory one unless REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
TARGET_S = 1.0
PERIODS = ("90", "365")
EXTRA_META = "bench_dashboard_meta"


def _segments_bench():
    spec = importlib.util.spec_from_file_location("bench_segments_run", ROOT / "bench/segments/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def add_dashboard_data(seg, members: int) -> None:
    """Withdrawals from every source, data requests and a year of lifecycle snapshots."""
    from django.db import connection

    from insights.models import LifecycleCount, LifecycleSnapshot, MemberStage
    from insights.services import month_start, take_lifecycle_snapshot

    h = seg.h
    with connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {EXTRA_META} (members int, seconds float)")
        cur.execute(f"SELECT members FROM {EXTRA_META}")  # noqa: S608 - constant name
        row = cur.fetchone()
        if row and row[0] == members:
            print("data: dashboard extras present (reused)")
            return
        started = time.perf_counter()
        # Replica mode: the ledger's trigger would refuse removing a previous run's rows.
        cur.execute("SET session_replication_role = replica")
        cur.execute("DELETE FROM privacy_datasubjectrequest")
        cur.execute("DELETE FROM consent_consentevent WHERE source_ref = 'bench-dash'")
        sources = "ARRAY['store', 'privacy_center', 'api_key', 'import_job', 'unsubscribe_link', 'sms_keyword']"
        seg._sql(
            cur,
            f"""
            INSERT INTO consent_consentevent (channel, action, occurred_at, recorded_at, source_type, source_ref,
                evidence, by_guardian, external_id, seq, prev_hash, hash, brand_id, member_id, store_id,
                notice_id, purpose_id)
            SELECT 'sms', 'withdrawn', t, t, ({sources})[1 + {h("m", 71, 6)}], 'bench-dash', '{{}}', false, NULL,
                   1000 + m, repeat('0', 64), md5(m::text) || md5('w'), 1, m, NULL, 1, 1
            FROM generate_series(1, %s) AS m
            CROSS JOIN LATERAL (SELECT now() - make_interval(secs => {h("m", 72, 365 * 86400)}) AS t) AS w
            WHERE {h("m", 70, 50)} = 0
            """,
            [members],
            label="withdrawals",
        )
        seg._sql(
            cur,
            f"""
            INSERT INTO privacy_datasubjectrequest (member_id, kind, status, details, received_at, due_at,
                completed_at, outcome, jurisdiction, extension_reason, response)
            SELECT m, (ARRAY['access', 'correction', 'deletion', 'withdraw_all'])[1 + {h("m", 81, 4)}], st,
                   '', r, r + interval '15 days', CASE WHEN st IN ('completed', 'rejected') THEN r + interval '5 days' END,
                   '{{}}', 'CN', '', ''
            FROM generate_series(1, %s) AS m
            CROSS JOIN LATERAL (
                SELECT (ARRAY['received', 'in_progress', 'completed', 'completed', 'rejected'])[1 + {h("m", 82, 5)}]
                       AS st, now() - make_interval(secs => {h("m", 83, 60 * 86400)}) AS r
            ) AS x
            WHERE {h("m", 80, 50)} = 0
            """,
            [members],
            label="data requests",
        )
        cur.execute("SET session_replication_role = DEFAULT")
    LifecycleCount.objects.all().delete()
    LifecycleSnapshot.objects.all().delete()
    MemberStage.objects.all().delete()
    today = dt.date.today()
    month = month_start(today)
    months = []
    for _ in range(12):
        months.append(month)
        month = month_start(month - dt.timedelta(days=1))
    for month in reversed(months):
        took = time.perf_counter()
        take_lifecycle_snapshot(month=month)
        print(f"  lifecycle snapshot {month:%Y-%m}: {time.perf_counter() - took:.1f} s", flush=True)
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
        cur.execute(f"DELETE FROM {EXTRA_META}")  # noqa: S608 - constant name
        cur.execute(f"INSERT INTO {EXTRA_META} VALUES (%s, %s)", [members, time.perf_counter() - started])  # noqa: S608


def _median(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (runs: {', '.join(f'{v * 1000:.0f}' for v in values)})"


def measure(runs: int, *, queries_only: bool = False) -> None:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from insights import queries
    from insights.forms import dashboard_form
    from members.models import Brand

    brand = Brand.objects.get(code="bench")
    user, _ = get_user_model().objects.get_or_create(
        username="bench-dashboard", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    # Warm the process (URLs, templates, translations) on the other brand, whose figures
    # are cached under another key: a server answers many pages, and this is not the DB.
    other = Brand.objects.exclude(pk=brand.pk).first()
    if other is not None:
        client.get(f"/admin/insights/dashboard/?brand={other.pk}&period=90")
    medians = []
    for period in PERIODS:
        url = f"/admin/insights/dashboard/?brand={brand.pk}&period={period}"
        cold, warm = [], []
        for _ in range(0 if queries_only else runs):
            cache.clear()
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as cold_queries:
                response = client.get(url)
            cold.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            assert b'id="dashboard"' in response.content, "the dashboard did not render"
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as warm_queries:
                client.get(url)
            warm.append(time.perf_counter() - started)
        if not queries_only:
            medians.append(statistics.median(cold))
            print(f"page, last {period} days, cold (cache cleared): {_median(cold)}, {len(cold_queries)} queries")
            print(f"page, last {period} days, warm (cached):        {_median(warm)}, {len(warm_queries)} queries")
    everyone = SimpleNamespace(is_authenticated=True, is_active=True, is_superuser=True)  # sees every brand
    form = dashboard_form({"brand": str(brand.pk), "period": "90"}, everyone)
    assert form.is_valid(), form.errors
    since, until = form.period_bounds()
    print("queries, cold, each alone:")
    for name, call in queries.timed_parts(brand, since, until):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        print(f"  {name:<24} {_median(times)}")
    if not queries_only:
        verdict = "under" if max(medians) < TARGET_S else "OVER"
        print(f"target: cold page {verdict} {TARGET_S:.0f} s (median of each period)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if it fits")
    parser.add_argument("--generate-only", action="store_true", help="make the data and stop")
    parser.add_argument("--queries-only", action="store_true", help="time the queries alone, not the page")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("This benchmark needs PostgreSQL: DATABASE_URL=postgres://…/cdp_bench_dashboard (its own database).")
    _setup_django()
    from django.core.management import call_command
    from django.db import connection

    seg = _segments_bench()
    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        print(
            f"machine: {os.cpu_count()} cores; PostgreSQL {cur.fetchone()[0]}; database {connection.settings_dict['NAME']}"
        )
        current = not args.regenerate and seg._data_is_current(cur, args.members)
    if not current:
        print(f"data: generating {args.members:,} members …", flush=True)
        print(f"data: generated in {seg.generate(args.members):.1f} s")
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {EXTRA_META}")
    else:
        print("data: reusing the generated data set")
    add_dashboard_data(seg, args.members)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM members_member), (SELECT count(*) FROM members_order),"
            " (SELECT count(*) FROM consent_consentevent), (SELECT count(*) FROM privacy_datasubjectrequest)"
        )
        print("data: {:,} members, {:,} orders, {:,} consent events, {:,} data requests".format(*cur.fetchone()))
    from insights.services import refresh_figures
    from members.models import Brand

    for brand in Brand.objects.order_by("pk"):
        started = time.perf_counter()
        refresh_figures(brand=brand)
        print(f"nightly refresh_figures({brand.code}): {time.perf_counter() - started:.1f} s", flush=True)
    if args.generate_only:
        return
    load = os.getloadavg()
    print(f"load average before measuring: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    measure(args.runs, queries_only=args.queries_only)


if __name__ == "__main__":
    main()

"""Scale benchmark (issue 28, item 4): 10M members, 50M orders, 30M consent events on one
machine, loaded with COPY, then the hot paths measured at that size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \\
        flock /tmp/bench.lock .venv/bin/python bench/scale/run.py [--members 10000000] [--keep] \\
        [--runs 3] [--duration 10] [--connections 16] [--load-only] [--explain]

Creates the database ``cdp_bench_scale`` next to the one DATABASE_URL names (``--keep``
reuses it when an earlier load of the same size finished), migrates it and loads it with
COPY (``generate.py``: --members members, 5× orders, 3× consent events, their consent
state, chain heads, identities, memberships and preferences), then builds the secondary
indexes and runs ANALYZE, each step timed. Then it measures, in this order:

1. the database: ``pg_database_size`` and the largest tables and indexes;
2. the consent check: ``GET /api/v1/consent/check?phone=…&purpose=marketing&channel=sms``
   on random members' phones, over gunicorn (production settings, 2 sync workers, the
   throttle in Redis) with ``wrk -t2 -c16 --latency``: requests/s, median and p99, with
   ``/healthz`` as the anchor (like ``bench/api/run.py``); and ``consent.queries.can_contact``
   called in this process one at a time (the query alone, median and p99);
3. a privacy page: ``/privacy/consents/`` (and ``/privacy/history/``) signed in, for a
   typical member of the load (3 events, about 5 orders) and a heavy one (500 more events
   through ``record_consent``, 2,000 orders), through Django's test client;
4. a segment build: ``segments.demo.EXAMPLE_RULES`` on brand ``bench`` marketing/sms through
   ``services.request_build`` + ``services.run_build`` (``bench/segments/measure.py``);
5. the dashboard: ``GET /admin/insights/dashboard/?brand=…&period=90`` as a superuser, cold (cache cleared)
   and warm, each dashboard query alone (``insights.queries.timed_parts``), and the nightly
   ``insights.services.refresh_figures`` for the brand.

The extras (the API key, the two privacy-center accounts, the superuser) are made once and
kept. No contact history and no lifecycle snapshots are laid: the build's frequency cap and
the dashboard's lifecycle chart see none. ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS)
of the build's statements. The last line is ``BENCH_RESULT {json}``. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402 - after the path
    bench_url,
    give_history,
    load_average,
    recreate_database,
    run_wrk,
    start_api_server,
    wrk_script,
)
from bench.scale import generate  # noqa: E402

DB_NAME = "cdp_bench_scale"
SCOPES = ["members:read", "consent:read", "consent:write"]
HEAVY_EVENTS = 500
HEAVY_ORDERS = 2000


def _ms(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values) * 1000, values[max(0, int(len(values) * 0.99) - 1)] * 1000


# --- 1. sizes ------------------------------------------------------------------------------


def sizes() -> dict:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        database = cur.fetchone()[0]
        cur.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),"
            " c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 2 DESC LIMIT 10"
        )
        tables = cur.fetchall()
        cur.execute(
            "SELECT c.relname, t.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
            " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' ORDER BY 3 DESC LIMIT 12"
        )
        indexes = cur.fetchall()
    gib = 1024**3
    print(f"\ndatabase size: {database / gib:.2f} GiB")
    print(f"  {'table':<32}{'total':>10}{'heap':>10}{'indexes':>10}{'rows':>14}")
    for name, total, heap, idx, rows in tables:
        print(f"  {name:<32}{total / gib:>9.2f}G{heap / gib:>9.2f}G{idx / gib:>9.2f}G{rows:>14,}")
    print("  largest indexes:")
    for name, table, size in indexes:
        print(f"    {name:<58}{table:<26}{size / gib:>7.2f}G")
    return {
        "database_gib": round(database / gib, 2),
        "tables": {name: {"total_gib": round(t / gib, 2), "heap_gib": round(hp / gib, 2),
                          "indexes_gib": round(i / gib, 2), "rows": rows} for name, t, hp, i, rows in tables},
        "indexes": {name: round(size / gib, 2) for name, _t, size in indexes},
    }  # fmt: skip


# --- extras made once ------------------------------------------------------------------------


def extras(n: int) -> dict:
    """The API key (new each run), the superuser and the two privacy-center accounts."""

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from cdp.api_keys import issue_api_key
    from cdp.models import ApiKey
    from consent.models import Purpose
    from members.models import Brand, Member, Store
    from privacy.models import PrivacyAccount

    brand = Brand.objects.get(code="bench")
    _key, raw = issue_api_key(ApiKey(name="bench-scale", brand=brand, scopes=SCOPES))
    User = get_user_model()
    User.objects.get_or_create(username="bench-scale-admin", defaults={"is_staff": True, "is_superuser": True})
    accounts = {}
    for label, index in (("typical", n // 3), ("heavy", n // 2)):
        username = f"bench-scale-{label}"
        user = User.objects.filter(username=username).first()
        if user is None:
            member = Member.objects.filter(pk__gte=index, status="active", memberships__store__brand=brand).order_by(
                "pk"
            )[0]
            if label == "heavy":
                store = Store.objects.filter(brand=brand).order_by("pk")[0]
                purpose = Purpose.objects.get(brand=brand, code="marketing")
                give_history(member, store, purpose, orders=HEAVY_ORDERS, events=HEAVY_EVENTS, prefix="H")
            user = User.objects.create(username=username)
            PrivacyAccount.objects.create(user=user, member=member, linked_at=timezone.now())
        accounts[label] = user
    return {"key": raw, "accounts": accounts}


# --- 2. consent check ------------------------------------------------------------------------


def _phones(count: int, n: int) -> list[str]:
    from members.models import Identity

    ids = random.sample(range(1, n + 1), min(n, count * 2))
    return list(Identity.objects.filter(kind="phone", member_id__in=ids).values_list("value", flat=True)[:count])


def consent_check(url: str, key: str, n: int, runs: int, duration: int, connections: int) -> dict:
    from consent.models import Purpose
    from consent.queries import can_contact

    purpose = Purpose.objects.get(brand__code="bench", code="marketing")
    phones = _phones(2000, n)
    # The query alone, one at a time in this process (a cold-ish sample of the table).
    times = []
    for phone in phones[:1000]:
        started = time.perf_counter()
        can_contact(None, purpose.brand_id, purpose, "sms", identity=("phone", phone))
        times.append(time.perf_counter() - started)
    direct_p50, direct_p99 = _ms(times)
    print(f"\nconsent check, can_contact in process (1,000 phones, one at a time): "
          f"median {direct_p50:.2f} ms, p99 {direct_p99:.2f} ms")  # fmt: skip

    server, base = start_api_server(url, os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"), ROOT)
    results: dict[str, list[dict]] = {"healthz": [], "check": []}
    loads = []
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 - localhost
                break
            except OSError:
                time.sleep(0.2)
        # The answers are the right ones: the API says what can_contact says here.
        for phone in phones[:30]:
            request = urllib.request.Request(
                f"{base}/api/v1/consent/check?purpose=marketing&channel=sms&phone=%2B{phone[1:]}",
                headers={"Authorization": f"Bearer {key}"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - localhost
                body = json.loads(response.read())
            decision = can_contact(None, purpose.brand_id, purpose, "sms", identity=("phone", phone))
            assert (body["allowed"], body["reason"]) == (decision.allowed, str(decision.reason)), (phone, body)
        quoted = [f"%2B{p[1:]}" for p in phones]
        scripts = {"healthz": None, "check": wrk_script("/api/v1/consent/check?purpose=marketing&channel=sms&phone=%s",
                                                   key, quoted)}  # fmt: skip
        urls = {"healthz": f"{base}/healthz", "check": f"{base}/"}
        for name in scripts:
            run_wrk(urls[name], scripts[name], 2, connections)
        for run in range(runs):
            loads.append(load_average())
            for name in scripts:
                results[name].append(run_wrk(urls[name], scripts[name], duration, connections))
                r = results[name][-1]
                print(f"run {run + 1} {name:8s} {r['rps']:8.0f} req/s  median {r['p50_ms']:6.2f} ms  "
                      f"p99 {r['p99_ms']:6.2f} ms  non-2xx {r['non_2xx']}  load {loads[-1]}")  # fmt: skip
                if r["non_2xx"]:
                    raise SystemExit(f"{name}: {r['non_2xx']} responses were not 2xx")
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        name: {k: round(statistics.median(r[k] for r in rs), 2) for k in ("rps", "p50_ms", "p99_ms")}
        for name, rs in results.items()
    }
    figures["check"]["ratio_to_healthz"] = round(figures["check"]["rps"] / figures["healthz"]["rps"], 3)
    figures["direct"] = {"p50_ms": round(direct_p50, 2), "p99_ms": round(direct_p99, 2)}
    figures["load"] = loads
    print(f"consent check over HTTP (median of {runs} runs, wrk -t2 -c{connections} {duration} s): "
          f"{figures['check']['rps']:.0f} req/s, median {figures['check']['p50_ms']:.2f} ms, "
          f"p99 {figures['check']['p99_ms']:.2f} ms; /healthz {figures['healthz']['rps']:.0f} req/s "
          f"({figures['check']['ratio_to_healthz']:.2f}×)")  # fmt: skip
    return figures


# --- 3. privacy pages -------------------------------------------------------------------------


def privacy_pages(accounts: dict, runs: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    out: dict = {}
    for label, user in accounts.items():
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        for path in ("/privacy/consents/", "/privacy/history/", "/privacy/"):
            first_started = time.perf_counter()
            response = client.get(path)
            first = time.perf_counter() - first_started
            assert response.status_code == 200, (path, response.status_code)
            times = []
            for _ in range(runs):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get(path)
                    times.append(time.perf_counter() - started)
            median, p99 = _ms(times)
            out[f"{label} {path}"] = {"first_ms": round(first * 1000, 1), "median_ms": round(median, 1),
                                      "max_ms": round(max(times) * 1000, 1), "queries": len(queries)}  # fmt: skip
            print(f"privacy {label:<8} {path:<20} first {first * 1000:7.1f} ms  median {median:7.1f} ms  "
                  f"max {max(times) * 1000:7.1f} ms  {len(queries)} queries")  # fmt: skip
    return out


# --- 4. segment build -------------------------------------------------------------------------


def segment_build(runs: int, explain: bool) -> dict:
    from bench.segments.measure import drop_bench_segments, explain_build, run_product
    from cdp import audit
    from consent.models import Purpose
    from members.models import Brand
    from segments.demo import EXAMPLE_RULES
    from segments.models import Segment

    brand = Brand.objects.get(code="bench")
    purpose = Purpose.objects.get(brand=brand, code="marketing")
    with audit.acting_as(audit.Actor(type="system", label="bench")):
        drop_bench_segments(brand, "bench-scale")
        segment = Segment.objects.create(
            brand=brand, purpose=purpose, channel="sms", slug="bench-scale-example", name="Example",
            rules=EXAMPLE_RULES,
        )  # fmt: skip
        times, funnel, build = [], None, None
        for run in range(runs):
            seconds, build = run_product(segment)
            times.append(seconds)
            funnel = build.funnel()
            print(f"segment build run {run + 1}: {seconds:.2f} s, funnel {funnel}; load {load_average()}", flush=True)
        if explain:
            print("\n--- EXPLAIN (ANALYZE, BUFFERS): the build's statements ---")
            print(explain_build(segment, build.started_at))
    return {"build_s": round(statistics.median(times), 2), "runs_s": [round(t, 2) for t in times],
            "funnel": {k: int(v) for k, v in funnel.items()}}  # fmt: skip


# --- 5. dashboard ---------------------------------------------------------------------------


def dashboard(runs: int) -> dict:
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client

    from insights import queries
    from insights.forms import dashboard_form
    from insights.services import refresh_figures
    from members.models import Brand

    brand = Brand.objects.get(code="bench")
    user = get_user_model().objects.get(username="bench-scale-admin")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    other = Brand.objects.get(code="other")
    client.get(f"/admin/insights/dashboard/?brand={other.pk}&period=90")  # warm the process on the other brand
    out: dict = {}
    everyone = SimpleNamespace(is_authenticated=True, is_active=True, is_superuser=True)
    form = dashboard_form({"brand": str(brand.pk), "period": "90"}, everyone)
    assert form.is_valid(), form.errors
    since, until = form.period_bounds()
    parts = {}
    print()
    for name, call in queries.timed_parts(brand, since, until):
        if name.startswith("page:"):
            started = time.perf_counter()
            call()
            parts[name] = round(time.perf_counter() - started, 3)
            print(f"  dashboard query {name:<30} {parts[name]:8.3f} s", flush=True)
    started = time.perf_counter()
    refresh_figures(brand=brand)
    out["refresh_figures_s"] = round(time.perf_counter() - started, 1)
    print(f"nightly refresh_figures(bench): {out['refresh_figures_s']:.1f} s", flush=True)
    cold, warm = [], []
    for _ in range(runs):
        cache.clear()
        started = time.perf_counter()
        response = client.get(f"/admin/insights/dashboard/?brand={brand.pk}&period=90")
        cold.append(time.perf_counter() - started)
        assert response.status_code == 200 and b'id="dashboard"' in response.content, response.status_code
        started = time.perf_counter()
        client.get(f"/admin/insights/dashboard/?brand={brand.pk}&period=90")
        warm.append(time.perf_counter() - started)
    out["page_cold_s"] = round(statistics.median(cold), 3)
    out["page_warm_s"] = round(statistics.median(warm), 3)
    print(f"dashboard page, 90 days, cold (cache cleared, figures stored by the refresh): median "
          f"{out['page_cold_s']:.3f} s ({', '.join(f'{t:.3f}' for t in cold)}); warm {out['page_warm_s']:.3f} s",
          flush=True)  # fmt: skip
    for name, call in queries.timed_parts(brand, since, until):
        if not name.startswith("page:"):
            started = time.perf_counter()
            call()
            parts[name] = round(time.perf_counter() - started, 3)
            print(f"  dashboard query {name:<30} {parts[name]:8.3f} s", flush=True)
    out["queries_s"] = parts
    return out


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse cdp_bench_scale when a load of this size is in it")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--load-only", action="store_true", help="load and stop")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) the build")
    parser.add_argument("--skip", default="", help="comma-separated: check,privacy,build,dashboard")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if not args.load_only and "check" not in skip and not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://… (a database next to which cdp_bench_scale is created).")
    url = bench_url(admin_url, DB_NAME)
    os.environ["BENCH_REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f}"
          f" GiB; load {load_average()}; database {DB_NAME}", flush=True)  # fmt: skip
    previous = None
    if args.keep:
        try:
            previous = generate.loaded(url)
        except Exception:  # noqa: BLE001 - no such database yet
            previous = None
        if previous and previous["members"] != args.members:
            previous = None
    if previous is None:
        recreate_database(admin_url, DB_NAME)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cdp.settings", "CDP_TESTING": "1",
                       "ALLOWED_HOSTS": "testserver,127.0.0.1"})  # fmt: skip
    os.environ.pop("REDIS_URL", None)  # no broker: builds run in this process
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if previous is None:
        from consent import ledger_partitions

        # A ledger two years old has had its monthly partitions made ahead all along.
        report = ledger_partitions.create_partitions(start=dt.date.today() - dt.timedelta(days=730))
        print(f"ledger partitions: {len(report.created)} created, {len(report.existing)} there already")
        print(f"loading {args.members:,} members, {5 * args.members:,} orders, {3 * args.members:,} events …",
              flush=True)  # fmt: skip
        previous = generate.load(url, args.members, log=lambda line: print(line, flush=True))
        previous["members"] = args.members
        print(f"loaded in {previous['timings']['total']:.0f} s; load {load_average()}", flush=True)
    else:
        print(f"reusing the load of {previous['members']:,} members (took {previous['timings']['total']:.0f} s)")
    result: dict = {"members": args.members, "load_s": {k: round(v, 1) for k, v in previous["timings"].items()},
                    "rows": previous["counts"], "sizes": sizes(), "load_average": [load_average()]}  # fmt: skip
    if args.load_only:
        print("BENCH_RESULT " + json.dumps({"name": "scale", "figures": result}, ensure_ascii=False))
        return 0
    made = extras(args.members)
    if "check" not in skip:
        result["consent_check"] = consent_check(
            url, made["key"], args.members, args.runs, args.duration, args.connections
        )
    if "privacy" not in skip:
        result["privacy"] = privacy_pages(made["accounts"], max(args.runs, 10))
    if "build" not in skip:
        result["segment_build"] = segment_build(args.runs, args.explain)
    if "dashboard" not in skip:
        result["dashboard"] = dashboard(args.runs)
    result["load_average"].append(load_average())
    print("BENCH_RESULT " + json.dumps({"name": "scale", "figures": result}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

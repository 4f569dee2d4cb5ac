"""REST API benchmark (issues 8 and 27): gunicorn with 2 workers on PostgreSQL, load from wrk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/api/run.py [--members 20000] [--runs 3] [--duration 8] [--connections 16] [--reuse]

Creates a fresh database ``cdp_bench_api`` next to the one DATABASE_URL names (``--reuse``
keeps it when it holds the seeded brand), seeds a brand with members (half with SMS
marketing consent), starts gunicorn (production settings, 2 sync workers, persistent
connections, the throttle in Redis) and, in each run, one after the other against the same
server with ``wrk -t2 -c16``:

1. ``GET /healthz``: the anchor (a database query, the outbox backlog, a Redis ping, the
   broker check, through every middleware);
2. ``GET /api/v1/consent/check?phone=…&purpose=marketing&channel=sms`` on random phones;
3. ``GET /api/v1/members/<id>/`` on random members;
4. ``GET /api/bench/row/<pk>/``: a bare DRF view reading one row by primary key (same key
   authentication and throttle), for reference.

Before the runs it checks the answers (the check allows exactly the members granted
consent; a member read returns that member). Then it times ``POST /api/v1/consent-events/``
with 1,000 events per request. Prints the median of the runs and the ratio to ``/healthz``
measured in the same run, and as its last line ``BENCH_RESULT {json}``.

Targets (issue 27): check and member read ≥ 0.5× ``/healthz`` (goal 0.7×), p99 < 25 ms at
c=16; a 1,000-event batch accepted in < 1 s. Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
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
    load_average,
    recreate_database,
    run_wrk,
    start_api_server,
    wrk_script,
)

DB_NAME = "cdp_bench_api"
SCOPES = ["members:read", "consent:read", "consent:write"]
BRAND = "lotus"


def _seed(count: int) -> None:
    """Members with phone identities and a membership; those with an even id granted SMS marketing."""
    from consent import services
    from consent.models import Notice, Purpose
    from members.identities import store_member_value
    from members.models import Brand, Identity, Member, Store, StoreMembership

    brand = Brand.objects.create(code=BRAND, name="莲花美妆")
    store = Store.objects.create(brand=brand, code="lotus-tmall", name="天猫", platform="tmall")
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans",
                            title="营销", body="v1")  # fmt: skip
    phones = [f"+86139{i:08d}" for i in range(count)]
    for start in range(0, count, 5000):
        chunk = phones[start : start + 5000]
        members = Member.objects.bulk_create([Member(name=f"会员{start + i}", phone=p) for i, p in enumerate(chunk)])
        Identity.objects.bulk_create(
            [Identity(member=m, kind="phone", value=m.phone) for m in members]
            + [Identity(member=m, kind="store_member", value=store_member_value(store.pk, f"S{m.pk}")) for m in members]
        )
        StoreMembership.objects.bulk_create(
            [StoreMembership(member=m, store=store, store_member_id=f"S{m.pk}") for m in members]
        )
        granted = [m for m in members if m.pk % 2 == 0]
        for i in range(0, len(granted), 1000):
            services.record_consents(
                [services.ConsentInput(member=m, purpose=purpose, channel="sms", action="granted")
                 for m in granted[i : i + 1000]],
                brand=brand, source_type="import_job",
            )  # fmt: skip


def _prepare(count: int, reuse: bool) -> tuple[str, dict[str, int]]:
    """A fresh API key and the members by phone, seeding unless ``reuse`` finds them."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cdp.api_keys import issue_api_key
    from cdp.models import ApiKey
    from members.models import Brand, Member

    if not (reuse and Brand.objects.filter(code=BRAND).exists()):
        _seed(count)
    brand = Brand.objects.get(code=BRAND)
    _key, raw = issue_api_key(ApiKey(name="bench", brand=brand, scopes=SCOPES))
    return raw, dict(Member.objects.values_list("phone", "pk"))


def _get(base: str, path: str, key: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - localhost
        return json.loads(response.read())


def _check_answers(base: str, key: str, by_phone: dict[str, int]) -> None:
    """The answers the load is made of are the right ones: the check says what
    ``can_contact`` says in this process, a member read returns that member."""
    from consent.models import Purpose
    from consent.queries import can_contact

    purpose = Purpose.objects.get(brand__code=BRAND, code="marketing")
    for phone in random.sample(sorted(by_phone), 40):
        pk = by_phone[phone]
        body = _get(base, f"/api/v1/consent/check?purpose=marketing&channel=sms&phone=%2B{phone[1:]}", key)
        decision = can_contact(None, purpose.brand_id, purpose, "sms", identity=("phone", phone))
        assert (body["allowed"], body["reason"]) == (decision.allowed, str(decision.reason)), (phone, pk, body)
        member = _get(base, f"/api/v1/members/{pk}/", key)
        assert member["id"] == pk and member["memberships"][0]["member_id"] == f"S{pk}", (pk, member)


def _batch(base: str, key: str, ids: list[int], run: int) -> float:
    events = [
        {"external_id": f"bench-{time.time_ns()}-{run}-{i}", "member": pk, "purpose": "marketing", "channel": "sms",
         "action": "withdrawn" if i % 3 else "granted", "occurred_at": "2026-06-01T10:00:00+08:00"}
        for i, pk in enumerate(random.sample(ids, 1000))
    ]  # fmt: skip
    body = json.dumps({"events": events}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/consent-events/", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - localhost
        payload = json.loads(response.read())
    elapsed = time.perf_counter() - started
    assert payload["created"] == 1000, payload
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reuse", action="store_true", help="keep cdp_bench_api when it is seeded already")
    parser.add_argument("--no-batch", action="store_true", help="skip the 1,000-event batches")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://… (a database next to which cdp_bench_api is created).")
    url = bench_url(admin_url, DB_NAME)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    if not args.reuse:
        recreate_database(admin_url, DB_NAME)
    else:
        import psycopg

        try:
            psycopg.connect(url).close()
        except psycopg.OperationalError:
            recreate_database(admin_url, DB_NAME)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cdp.settings", "CDP_TESTING": "1"})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    started = time.perf_counter()
    key, by_phone = _prepare(args.members, args.reuse)
    ids = sorted(by_phone.values())
    print(f"{len(ids)} members ready in {time.perf_counter() - started:.1f} s")

    server, base = start_api_server(url, redis_url, ROOT)
    names = ("healthz", "check", "member", "row")
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in names}
    ratios: dict[str, list[float]] = {"check": [], "member": [], "row": []}
    loads: list[str] = []
    batches: list[float] = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        _check_answers(base, key, by_phone)
        phones = [f"%2B{p[1:]}" for p in random.sample(sorted(by_phone), min(2000, len(by_phone)))]
        members = [str(pk) for pk in random.sample(ids, min(2000, len(ids)))]
        scripts = {
            "healthz": None,
            "check": wrk_script("/api/v1/consent/check?purpose=marketing&channel=sms&phone=%s", key, phones),
            "member": wrk_script("/api/v1/members/%s/", key, members),
            "row": wrk_script("/api/bench/row/%s/", key, members),
        }
        urls = {name: base + ("/healthz" if name == "healthz" else "/") for name in names}
        for name in names:  # warm every worker's connections and caches
            run_wrk(urls[name], scripts[name], 2, args.connections)
        for run in range(args.runs):
            loads.append(load_average())
            for name in names:
                figures = run_wrk(urls[name], scripts[name], args.duration, args.connections)
                results[name].append((figures["rps"], figures["p99_ms"], figures["non_2xx"]))
                rps, p99, bad = results[name][-1]
                print(f"run {run + 1} {name:8s} {rps:8.0f} req/s  p99 {p99:6.1f} ms  non-2xx {bad}")
                if bad:
                    raise SystemExit(f"{name}: {bad} responses were not 2xx")
            for name in ratios:
                ratios[name].append(results[name][-1][0] / results["healthz"][-1][0])
            print(f"run {run + 1} load {loads[-1]}  check {ratios['check'][-1]:.2f}×  member "
                  f"{ratios['member'][-1]:.2f}×  row {ratios['row'][-1]:.2f}× /healthz")  # fmt: skip
        if not args.no_batch:
            batches = [_batch(base, key, ids, run) for run in range(args.runs)]
            print("batch of 1,000 events: " + ", ".join(f"{b * 1000:.0f} ms" for b in batches))
    finally:
        server.terminate()
        server.wait(timeout=30)

    median = {name: statistics.median(r[0] for r in results[name]) for name in names}
    p99 = {name: statistics.median(r[1] for r in results[name]) for name in names}
    ratio = {name: statistics.median(values) for name, values in ratios.items()}
    print(f"\nmedian of {args.runs} runs ({os.cpu_count()} CPUs, wrk -t2 -c{args.connections} for {args.duration} s, "
          f"gunicorn 2 sync workers; load before each run: {'; '.join(loads)}):")  # fmt: skip
    for name in names:
        share = f"  {ratio[name]:.2f}× /healthz" if name in ratio else ""
        print(f"  {name:8s} {median[name]:8.0f} req/s  p99 {p99[name]:6.1f} ms{share}")
    if batches:
        print(f"  1,000-event batch accepted in {statistics.median(batches) * 1000:.0f} ms (target < 1000 ms)")
    ok = all(ratio[n] >= 0.5 and p99[n] < 25 for n in ("check", "member"))
    ok = ok and (not batches or statistics.median(batches) < 1.0)
    print("targets: check and member ≥ 0.5× /healthz (goal 0.7×), p99 < 25 ms:", "PASS" if ok else "FAIL")
    figures = {
        "check_rps": round(median["check"], 1), "check_p99_ms": round(p99["check"], 2),
        "member_rps": round(median["member"], 1), "member_p99_ms": round(p99["member"], 2),
        "row_rps": round(median["row"], 1), "healthz_rps": round(median["healthz"], 1),
        "healthz_p99_ms": round(p99["healthz"], 2),
        "check_ratio": round(ratio["check"], 3), "member_ratio": round(ratio["member"], 3),
        "row_ratio": round(ratio["row"], 3),
        "batch_ms": round(statistics.median(batches) * 1000, 1) if batches else None,
        "load": loads,
    }  # fmt: skip
    print("BENCH_RESULT " + json.dumps({"name": "api", "ok": ok, "figures": figures}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""REST API benchmark (issue 8): gunicorn with 2 workers on PostgreSQL, load from wrk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/api/run.py [--members 20000] [--runs 5] [--duration 10]

Creates a fresh database ``cdp_bench_api`` next to the one DATABASE_URL names, seeds a
brand with members (half with SMS marketing consent), starts gunicorn (production
settings, 2 sync workers, persistent connections, the throttle in Redis), then alternates
in the same run:
1. ``GET /api/bench/row/<pk>/``: a minimal DRF endpoint reading one row by primary key
   (same key authentication and throttle);
2. ``GET /api/v1/consent/check?phone=…&purpose=marketing&channel=sms`` on random phones;
and finally times ``POST /api/v1/consent-events/`` with 1,000 events per request.
Targets: check ≥ 70% of the row endpoint's requests/s, check p99 < 50 ms, a 1,000-event
batch accepted in < 1 s. Needs ``wrk`` (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_api"
SCOPES = ["members:read", "consent:read", "consent:write"]


def _seed(count: int) -> tuple[str, list[str], list[int]]:
    """Members with phone identities and a membership; half granted SMS marketing."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cdp.api_keys import issue_api_key
    from cdp.models import ApiKey
    from consent import services
    from consent.models import Notice, Purpose
    from members.identities import store_member_value
    from members.models import Brand, Identity, Member, Store, StoreMembership

    brand = Brand.objects.create(code="lotus", name="莲花美妆")
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
    _key, raw = issue_api_key(ApiKey(name="bench", brand=brand, scopes=SCOPES))
    ids = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    return raw, phones, ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lua(path: str, key: str, choices: list[str]) -> str:
    values = ",".join(json.dumps(c) for c in choices)
    return f"""
local choices = {{{values}}}
wrk.headers["Authorization"] = "Bearer {key}"
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("{path}", choices[math.random(#choices)]))
end
"""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, script: str, duration: int, connections: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx responses)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", f.name, url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(value) * _UNITS[unit], int(bad.group(1)) if bad else 0


def _batch(base: str, key: str, ids: list[int], run: int) -> float:
    events = [
        {"external_id": f"bench-{run}-{i}", "member": pk, "purpose": "marketing", "channel": "sms",
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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://… (a database next to which cdp_bench_api is created).")
    url = bench_url(admin_url, DB_NAME)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    recreate_database(admin_url, DB_NAME)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cdp.settings", "CDP_TESTING": "1"})
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    started = time.perf_counter()
    key, phones, ids = _seed(args.members)
    print(f"seeded {len(ids)} members in {time.perf_counter() - started:.1f} s")

    port = _free_port()
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "bench.api.settings", "DATABASE_URL": url, "REDIS_URL": redis_url,
        "DEBUG": "0", "SECRET_KEY": "bench-only-not-secret", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
        "API_THROTTLE_RATE": "1000000000/min", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    env.pop("CDP_TESTING", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cdp.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "--env", "DJANGO_SETTINGS_MODULE=bench.api.settings"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        sample = random.sample(phones, min(2000, len(phones)))
        check = _lua("/api/v1/consent/check?purpose=marketing&channel=sms&phone=%s", key, sample)
        row = _lua("/api/bench/row/%s/", key, [str(pk) for pk in random.sample(ids, min(2000, len(ids)))])
        _wrk(base + "/", row, 3, args.connections)  # warm both workers' connections and caches
        _wrk(base + "/", check, 3, args.connections)
        results: dict[str, list[tuple[float, float, int]]] = {"row": [], "check": []}
        for run in range(args.runs):
            for name, script in (("row", row), ("check", check)):
                results[name].append(_wrk(base + "/", script, args.duration, args.connections))
                rps, p99, bad = results[name][-1]
                print(f"run {run + 1} {name:5s} {rps:8.0f} req/s  p99 {p99:6.1f} ms  non-2xx {bad}")
        batches = [_batch(base, key, ids, run) for run in range(args.runs)]
        print("batch of 1,000 events: " + ", ".join(f"{b * 1000:.0f} ms" for b in batches))
    finally:
        server.terminate()
        server.wait(timeout=30)

    row_rps = statistics.median(r[0] for r in results["row"])
    check_rps = statistics.median(r[0] for r in results["check"])
    check_p99 = statistics.median(r[1] for r in results["check"])
    batch = statistics.median(batches)
    ratio = check_rps / row_rps
    print(
        f"\nmedian of {args.runs} runs ({os.cpu_count()} CPUs, wrk -t1 -c{args.connections}, gunicorn 2 sync workers):"
    )
    print(f"  row by pk      {row_rps:8.0f} req/s  p99 {statistics.median(r[1] for r in results['row']):.1f} ms")
    print(
        f"  consent check  {check_rps:8.0f} req/s  p99 {check_p99:.1f} ms  ({ratio:.0%} of row; target ≥ 70%, p99 < 50 ms)"
    )
    print(f"  1,000-event batch accepted in {batch * 1000:.0f} ms (target < 1000 ms)")
    ok = ratio >= 0.70 and check_p99 < 50 and batch < 1.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

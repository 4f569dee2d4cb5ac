"""Platform events benchmark (issue 26): how fast a signed membership push is answered.

Creates ``cdp_bench_platforms`` next to the database DATABASE_URL names, seeds a brand with
``--members`` members at a Tmall store (so lookups run against full indexes), connects the
store (``connect_platform``) and starts gunicorn (production settings, 2 sync workers,
persistent connections) and one ``celery worker`` on Redis (``--redis``, database 12 by
default), as production runs them: the answer stores the event, the worker applies it.
Then, from ``--senders`` threads, it pushes ``--events`` signed Tmall joins of new people,
as many updates and as many unbinds, each a request of its own, and times each answer;
``/healthz`` of the same server is timed the same way as the anchor. After each kind it
waits until the worker has applied every event and reports how long that took after the
last answer. Prints median, p95 and p99 per kind, and ``BENCH_RESULT {json}`` last.

Target: a platform event answered in under 20 ms at p99.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/platforms/run.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_platforms"
SECRET = "bench-app-secret"
CHINA = ZoneInfo("Asia/Shanghai")


def _seed(count: int) -> None:
    from django.core.management import call_command

    from consent import services
    from consent.models import Notice
    from imports.platform_events.connections import connect_platform
    from members.identities import store_member_value
    from members.models import Brand, Identity, Member, Store, StoreMembership

    call_command("migrate", verbosity=0)
    brand = Brand.objects.create(code="lotus", name="莲花美妆")
    store = Store.objects.create(brand=brand, code="lotus-tmall", name="天猫", platform="tmall")
    services.publish_notice(brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale="zh-hans", title="会员协议",
                            body="v1", published_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    for start in range(0, count, 5000):
        members = Member.objects.bulk_create(
            [Member(name=f"会员{i}", phone=f"+86137{i:08d}") for i in range(start, min(count, start + 5000))]
        )
        Identity.objects.bulk_create(
            [Identity(member=m, kind="phone", value=m.phone) for m in members]
            + [Identity(member=m, kind="store_member", value=store_member_value(store.pk, f"S{m.pk}")) for m in members]
        )
        StoreMembership.objects.bulk_create(
            [StoreMembership(member=m, store=store, store_member_id=f"S{m.pk}") for m in members]
        )
    connect_platform(store=store, secret=SECRET, app_id="bench")


def _push(port: int, topic: str, msg_id: str, content: dict) -> tuple[float, int]:
    body = json.dumps({"msg_id": msg_id, "topic": topic, "content": content}).encode()
    query = {"app_key": "bench", "timestamp": dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
             "sign_method": "hmac-sha256"}  # fmt: skip
    text = "".join(f"{k}{query[k]}" for k in sorted(query)).encode() + body
    query["sign"] = hmac.new(SECRET.encode(), text, hashlib.sha256).hexdigest().upper()
    path = "/api/v1/platform-events/lotus-tmall/?" + "&".join(f"{k}={v}" for k, v in query.items()).replace(" ", "%20")
    return _request(port, "POST", path, body)


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed, response.status


def _run(port: int, senders: int, jobs: list, fn) -> list[float]:
    times: list[float] = []
    lock = threading.Lock()
    failures: list[int] = []

    def work(part: list) -> None:
        for job in part:
            elapsed, code = fn(port, *job)
            with lock:
                times.append(elapsed)
                if code != 200:
                    failures.append(code)

    threads = [threading.Thread(target=work, args=(jobs[i::senders],)) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"{len(failures)} pushes failed, e.g. HTTP {failures[0]}")
    return times


def _applied() -> float:
    """Seconds until the worker has applied every pushed event (none pending, none failed)."""
    from imports.models import PlatformEvent

    started = time.perf_counter()
    while PlatformEvent.objects.filter(outcome="pending").exists():
        if time.perf_counter() - started > 600:
            sys.exit("the worker did not apply the events within 10 minutes")
        time.sleep(0.05)
    failed = PlatformEvent.objects.filter(outcome="failed").count()
    if failed:
        sys.exit(f"{failed} events failed to apply")
    return round(time.perf_counter() - started, 2)


def _figures(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1], 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1000, help="joins, and as many updates and unbinds")
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="the broker (flushed first)")
    parser.add_argument(
        "--apply", choices=["after", "during"], default="after",
        help="after: the worker is paused (SIGSTOP) while each kind is pushed, then applies the lot, so the answers "
        "are timed alone and the apply rate is measured; during: it applies while the pushes go on, on the same cores",
    )  # fmt: skip
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "")
    if not admin_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL=postgres://… (a database next to which cdp_bench_platforms is created).")
    url = bench_url(admin_url, DB_NAME)
    recreate_database(admin_url, DB_NAME)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cdp.settings", "CDP_TESTING": "1",
                       "REDIS_URL": args.redis, "CELERY_TASK_ALWAYS_EAGER": "1"})  # fmt: skip
    subprocess.run(["redis-cli", "-u", args.redis, "flushdb"], check=True, capture_output=True)
    import django

    django.setup()
    started = time.perf_counter()
    _seed(args.members)
    print(f"{args.members} members ready in {time.perf_counter() - started:.1f} s")
    from django.db import connections

    connections.close_all()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "0", "SECRET_KEY": "bench-only-not-secret",
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("CDP_TESTING", None)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--concurrency", "1", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cdp.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                _request(port, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        n = args.events
        now = dt.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        joins = [("taobao_crm_MemberJoin", f"j{i}", {"omid": f"T{i}", "mobile": f"1390{i:07d}", "grade_name": "金卡",
                                                     "points": i, "join_time": now}) for i in range(n)]  # fmt: skip
        updates = [("taobao_crm_MemberUpdate", f"u{i}", {"omid": f"T{i}", "grade_name": "钻石卡", "modified": now})
                   for i in range(n)]  # fmt: skip
        unbinds = [("taobao_crm_MemberUnbind", f"e{i}", {"omid": f"T{i}", "unbind_time": now}) for i in range(n)]
        _run(port, args.senders, joins[:50], _push)  # warm-up: both workers connected
        _applied()
        healthz = _run(port, args.senders, [("GET", "/healthz")] * n, _request)
        results: dict[str, dict[str, float]] = {"healthz": _figures(healthz)}
        for name, jobs in (("join", joins[50:]), ("update", updates), ("unbind", unbinds)):
            if args.apply == "after":
                worker.send_signal(signal.SIGSTOP)
            results[name] = _figures(_run(port, args.senders, jobs, _push))
            if args.apply == "after":
                worker.send_signal(signal.SIGCONT)
            results[name]["applied_after_s"] = _applied()
            results[name]["applied_per_s"] = round(len(jobs) / max(results[name]["applied_after_s"], 0.001))
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait()
    load = os.getloadavg()
    print(f"{args.senders} sender(s), {n} pushes of each kind, applied {args.apply} them, load {load[0]:.1f}")
    for name, figures in results.items():
        lag = (f"   all applied {figures['applied_after_s']:.2f} s after the last answer"
               + (f" ({figures['applied_per_s']:,} events/s)" if args.apply == "after" else "")
               if name != "healthz" else "")  # fmt: skip
        print(f"  {name:<8} median {figures['median_ms']:6.2f} ms   p95 {figures['p95_ms']:6.2f} ms   "
              f"p99 {figures['p99_ms']:6.2f} ms{lag}")  # fmt: skip
    worst = max(results[k]["p99_ms"] for k in ("join", "update", "unbind"))
    print(f"worst p99 {worst:.1f} ms (target < 20 ms)")
    print("BENCH_RESULT " + json.dumps({"name": "platforms", "ok": worst < 20, "apply": args.apply, "figures": {
        "worst_p99_ms": worst, "healthz_p99_ms": results["healthz"]["p99_ms"],
        **{f"{k}_{m}": v for k, f in results.items() for m, v in f.items()}}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

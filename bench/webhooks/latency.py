"""Webhook latency benchmark (issue: consent truth): how long a consent change takes to
reach a webhook receiver, end to end, in the deployment's shape.

    .venv/bin/python bench/webhooks/latency.py [--changes 1000] [--rate 10] [--members 200]
        [--concurrency 4] [--no-beat] [--database cdp_bench_webhooks]

``DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/postgres) names the server: the
benchmark recreates a database of its own next to it. ``REDIS_URL`` (default
redis://127.0.0.1:6379/3) is the Celery broker: give it a Redis database of its own, as
the benchmark empties the ``celery`` queue before it starts.

It starts a local HTTP receiver (a process of its own that timestamps each arrival), a
real ``celery worker`` (prefork, ``--concurrency``) and ``celery beat`` (the outbox relay
and the retry sweep, as in production), subscribes the receiver to ``consent.changed``,
then records ``--changes`` consent changes through ``consent.services.record_consent`` at
``--rate`` per second (grants and withdrawals of ``--members`` people, in the privacy
center's name). The path of each: the change's transaction writes an outbox row, sent to
Redis right after commit → the worker's ``publish_event`` makes the delivery, whose outbox
row goes to Redis after that commit → the worker's ``deliver`` POSTs it.

Prints how many arrived, and the latency from the event's ``recorded_at`` to its arrival:
median, p95, p99, max; then where the time went (recorded → delivery made → attempt
started → arrived). Target: p99 < 2 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"
TARGET_P99 = 2.0


# --- The receiver: a process of its own, so its timestamps do not wait for the GIL of the
# process that records the changes.


def _receive(log_path: str, port_file: str) -> None:
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            payload = json.loads(body)
            event = payload["data"]["event"]
            line = {"arrived": arrived, "event": event["id"], "recorded_at": event["recorded_at"],
                    "sequence": payload["sequence"], "delivery": self.headers.get("X-CDP-Delivery")}  # fmt: skip
            with lock:
                log.write(json.dumps(line) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


def arrivals(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.endswith("}")]


# --- Processes -------------------------------------------------------------------------------


def _settings_env(url: str, redis_url: str) -> dict[str, str]:
    """The environment of this process and of the worker and beat it starts."""
    return {
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "CDP_TESTING": "1",  # no SECRET_KEY needed; nothing else in the path depends on it
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",  # the receiver is on 127.0.0.1
        "LOG_LEVEL": "WARNING",
    }


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_worker(app: Any, worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            sys.exit(f"the worker exited:\n{log.read_text()[-3000:]}")
        if app.control.ping(timeout=1.0):
            return
    sys.exit("the worker did not answer a ping within 90 s")


# --- Figures --------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, min(len(values) - 1, round(fraction * len(values) + 0.5) - 1))]


def summary(values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return "nothing"
    return (
        f"median {statistics.median(values) * 1000:,.0f} ms, p95 {percentile(values, 0.95) * 1000:,.0f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:,.0f} ms, max {values[-1] * 1000:,.0f} ms"
    )


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --- The run --------------------------------------------------------------------------------


def _seed(members: int, receiver_url: str) -> tuple[Any, Any, list[Any]]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from consent import services as consent_services
    from consent.models import Notice, Purpose
    from members.models import Brand, Member, Store, StoreMembership
    from webhooks import services as webhooks

    brand = Brand.objects.create(code="lotus", name="莲花美妆")
    store = Store.objects.create(brand=brand, code="lotus-tmall", name="天猫", platform="tmall")
    purpose = Purpose.objects.create(brand=brand, code="marketing", name="营销", channels=["sms"], is_marketing=True)
    consent_services.publish_notice(brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose,
                                    locale="zh-hans", title="营销", body="v1")  # fmt: skip
    people = Member.objects.bulk_create(
        [Member(name=f"会员{i}", phone=f"+86139{i:08d}", birth_date=dt.date(1990, 1, 1)) for i in range(members)]
    )
    StoreMembership.objects.bulk_create(
        [StoreMembership(member=m, store=store, store_member_id=f"S{m.pk}") for m in people]
    )
    webhooks.create_subscription(brand=brand, url=receiver_url, events=["consent.changed"])
    return brand, purpose, people


def _record(brand: Any, purpose: Any, people: list[Any], changes: int, rate: float) -> tuple[float, float]:
    """``changes`` consent changes at ``rate`` per second (a fixed schedule: a slow call
    delays the next ones, not the rate). Returns the seconds it took and the slowest call."""
    from consent import services as consent_services

    rng = random.Random(7)
    current: dict[int, str] = {}
    started = time.monotonic()
    slowest = 0.0
    for i in range(changes):
        due = started + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        person = rng.choice(people)
        action = "withdrawn" if current.get(person.pk) == "granted" else "granted"
        current[person.pk] = action
        t0 = time.monotonic()
        consent_services.record_consent(member=person, brand=brand, purpose=purpose, channel="sms", action=action,
                                        source_type="privacy_center", evidence={"ip": "203.0.113.9"})  # fmt: skip
        slowest = max(slowest, time.monotonic() - t0)
    return time.monotonic() - started, slowest


def _stages() -> dict[str, list[float]]:
    """Per delivery: recorded → delivery made (publish hop) → first attempt started
    (deliver hop), from the database."""
    from consent.models import ConsentEvent
    from webhooks.models import Delivery, DeliveryAttempt

    recorded = dict(ConsentEvent.objects.values_list("pk", "recorded_at"))
    made: dict[int, tuple[int, dt.datetime]] = {}
    for pk, body, created_at in Delivery.objects.values_list("pk", "body", "created_at"):
        made[pk] = (json.loads(body)["data"]["event"]["id"], created_at)
    first_attempt: dict[int, dt.datetime] = {}
    for delivery_id, started_at in DeliveryAttempt.objects.order_by("started_at").values_list(
        "delivery_id", "started_at"
    ):
        first_attempt.setdefault(delivery_id, started_at)
    publish, deliver = [], []
    for pk, (event_id, created_at) in made.items():
        publish.append((created_at - recorded[event_id]).total_seconds())
        if pk in first_attempt:
            deliver.append((first_attempt[pk] - created_at).total_seconds())
    return {"recorded → delivery made": publish, "delivery made → attempt started": deliver}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="consent changes per second")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes (prefork)")
    parser.add_argument("--no-beat", action="store_true", help="no celery beat (outbox relay, retry sweep)")
    parser.add_argument("--database", default="cdp_bench_webhooks")
    parser.add_argument("--verbose", action="store_true", help="the worker logs every task and its run time")
    parser.add_argument("--drain-seconds", type=float, default=60, help="how long to wait for the last arrivals")
    args = parser.parse_args()

    admin_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if not admin_url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://… (the benchmark creates its own database next to it)")
    recreate_database(admin_url, args.database)
    url = bench_url(admin_url, args.database)
    os.environ.update(_settings_env(url, redis_url))
    env = dict(os.environ)

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    received, port_file = workdir / "received.jsonl", workdir / "port"
    import multiprocessing as mp

    receiver = mp.get_context("spawn").Process(target=_receive, args=(str(received), str(port_file)), daemon=True)
    receiver.start()
    while not port_file.exists() or not port_file.read_text():
        time.sleep(0.05)
    receiver_url = f"http://127.0.0.1:{port_file.read_text()}/hooks"

    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from cdp.celery import app

    brand, purpose, people = _seed(args.members, receiver_url)
    connections.close_all()
    app.control.purge()  # tasks a previous run left in this Redis database

    celery = [sys.executable, "-m", "celery", "-A", "cdp"]
    worker_log, beat_log = workdir / "worker.log", workdir / "beat.log"
    worker = _start(
        [*celery, "worker", f"--loglevel={'INFO' if args.verbose else 'WARNING'}", f"--concurrency={args.concurrency}", "--without-gossip",
         "--without-mingle"],
        env, worker_log,
    )  # fmt: skip
    beat = None
    if not args.no_beat:
        beat = _start([*celery, "beat", "--loglevel=WARNING", "--schedule", str(workdir / "beat")], env, beat_log)
    try:
        _wait_for_worker(app, worker, worker_log)
        print(
            f"machine: {os.cpu_count()} cores, load {_load()}; PostgreSQL {args.database}, broker {redis_url}; "
            f"worker prefork ×{args.concurrency} (prefetch multiplier {settings.CELERY_WORKER_PREFETCH_MULTIPLIER}, "
            f"acks late {settings.CELERY_TASK_ACKS_LATE}); beat {'off' if beat is None else 'on'}"
        )
        print(f"recording {args.changes:,} consent changes of {args.members:,} people at {args.rate:g}/s …")
        took, slowest = _record(brand, purpose, people, args.changes, args.rate)
        print(f"recorded in {took:.1f} s ({args.changes / took:.1f}/s; slowest record_consent {slowest * 1000:.0f} ms)")
        deadline = time.monotonic() + args.drain_seconds
        while time.monotonic() < deadline and len({a["event"] for a in arrivals(received)}) < args.changes:
            time.sleep(0.25)
        load = _load()
    finally:
        for proc in (beat, worker):
            if proc is not None:
                _stop(proc)
        receiver.terminate()
        receiver.join(10)

    got = arrivals(received)
    first: dict[int, dict[str, Any]] = {}
    for a in got:
        first.setdefault(a["event"], a)
    latencies = [a["arrived"] - dt.datetime.fromisoformat(a["recorded_at"]).timestamp() for a in first.values()]
    print(f"arrived: {len(first):,} of {args.changes:,} changes ({len(got) - len(first)} duplicates); load {load}")
    print(f"latency recorded_at → received: {summary(latencies)}")
    for stage, values in _stages().items():
        print(f"  {stage}: {summary(values)}")
    p99 = percentile(sorted(latencies), 0.99) if latencies else float("inf")
    verdict = "met" if p99 < TARGET_P99 and len(first) == args.changes else "NOT met"
    print(f"target p99 < {TARGET_P99:g} s with every change delivered: {verdict}")
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()

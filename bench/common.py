"""What the benchmarks share: each works in a database of its own next to the one
DATABASE_URL names, recreated from scratch when asked."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse, urlunparse


def bench_url(url: str, db_name: str) -> str:
    """``url`` with its database replaced by the benchmark's own."""
    return urlunparse(urlparse(url)._replace(path=f"/{db_name}"))


def recreate_database(admin_url: str, db_name: str) -> None:
    """Drop and create ``db_name`` through the server ``admin_url`` points at."""
    import psycopg

    parts = urlparse(admin_url)
    with psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres", autocommit=True,
    ) as conn:  # fmt: skip
        conn.execute(f"DROP DATABASE IF EXISTS {db_name}")
        conn.execute(f"CREATE DATABASE {db_name}")


def wrk_script(path: str, key: str, choices: list[str]) -> str:
    """A wrk Lua script: GET ``path`` (a format string with one ``%s``) with a random one of
    ``choices`` each request, authorised with the API key ``key``."""
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


def run_wrk(url: str, script: str | None, duration: int, connections: int) -> dict[str, float]:
    """Run wrk (2 threads, ``connections`` connections) for ``duration`` seconds: requests/s,
    median and p99 latency in ms, and how many answers were not 2xx/3xx."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    name = None
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(script)
        name = f.name
        command += ["-s", name]
    try:
        out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    finally:
        if name:
            os.unlink(name)

    def latency(pct: str) -> float:
        value, unit = re.search(rf"{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * _UNITS[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def start_api_server(url: str, redis_url: str, root: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn (2 sync workers) on the REST API with production settings and no throttle
    (``bench.api.settings``), on a free port; returns the process and its base URL. The
    caller waits for it to answer and terminates it."""
    port = free_port()
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "bench.api.settings", "DATABASE_URL": url, "REDIS_URL": redis_url,
        "DEBUG": "0", "SECRET_KEY": "bench-only-not-secret", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0",
        "API_THROTTLE_RATE": "1000000000/min", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    env.pop("CDP_TESTING", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cdp.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "--env", "DJANGO_SETTINGS_MODULE=bench.api.settings"],
        cwd=root, env=env,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def give_history(member: object, store: object, purpose: object, *, orders: int, events: int, prefix: str) -> None:
    """A person with a long past, for the privacy-page benches: ``orders`` orders at
    ``store`` an hour apart, and ``events`` SMS consent choices for ``purpose``, granted and
    withdrawn in turn a minute apart, recorded through ``record_consent`` (the ledger's chain)."""
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from consent import services
    from members.models import Order

    now = timezone.now()
    Order.objects.bulk_create(
        [Order(store=store, external_id=f"{prefix}{member.pk}-{k}", member=member, amount=Decimal("99.00"),
               placed_at=now - dt.timedelta(hours=k)) for k in range(orders)],
        batch_size=2000,
    )  # fmt: skip
    for k in range(events):
        services.record_consent(
            member=member, brand=store.brand, purpose=purpose, channel="sms",
            action="granted" if k % 2 == 0 else "withdrawn", source_type="store",
            occurred_at=now - dt.timedelta(minutes=events - k),
        )  # fmt: skip

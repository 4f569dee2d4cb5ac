"""Run the benchmarks with one command: ``python -m bench`` (or ``make bench``).

Each benchmark runs in a child process as its own page of bench/README.md describes, one
after the other (they would measure each other otherwise), and prints its figures; its
last line, ``BENCH_RESULT {json}``, carries the figures and their ratio to the anchor it
measured in the same run (the API against ``/healthz`` of the same server, a segment build
against the best hand-written SQL, …). This runner collects those lines into
``bench/results/latest.json`` with the machine, the load and the command of each, and
prints a summary. ``--only api,consent`` runs some; ``--list`` shows them.

Needs PostgreSQL (``DATABASE_URL``, default the local server) and, for the API and the
webhook latency, Redis (``REDIS_URL``) and ``wrk``. The sizes are the issue targets' where
those fit in minutes, else smaller; each benchmark's own options take other sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
PREFIX = "BENCH_RESULT "

# name → (script, arguments): what ``python -m bench`` runs by default.
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "api": ("bench/api/run.py", ["--members", "20000", "--runs", "3"]),
    "consent": ("bench/consent/run.py", []),
    "segments": ("bench/segments/run.py", ["--runs", "3"]),
    "platforms": ("bench/platforms/run.py", ["--members", "100000", "--events", "1000"]),
    "member_import": ("bench/import/run.py", ["--rows", "200000", "--baseline-rows", "0"]),
    "order_import": ("bench/import/orders.py", ["--rows", "1000000", "--runs", "3"]),
    "webhooks": ("bench/webhooks/latency.py", ["--changes", "1000"]),
    # An hour and ≈45 GiB at 10M members: only with --only scale (bench/README.md, "Scale").
    "scale": ("bench/scale/run.py", ["--members", "10000000", "--runs", "3", "--keep"]),
}
# Run only when named in --only.
NOT_BY_DEFAULT = {"scale"}


def result_of(output: str) -> dict | None:
    """The ``BENCH_RESULT`` line of a benchmark's output, parsed; None without one."""
    for line in reversed(output.splitlines()):
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    return None


# The benchmarks that take DATABASE_URL's database as their own (filled once, reused).
OWN_DATABASE = {"segments": "cdp_bench_segments"}


def run(name: str, env: dict[str, str]) -> dict:
    script, arguments = BENCHMARKS[name]
    command = [sys.executable, script, *arguments]
    if name in OWN_DATABASE:
        env = {**env, "DATABASE_URL": env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + OWN_DATABASE[name]}
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        print("   " + line, end="", flush=True)
        lines.append(line)
    code = process.wait()
    found = result_of("".join(lines))
    entry = {
        "command": " ".join(command[1:]),
        "seconds": round(time.monotonic() - started, 1),
        "load_before": round(load_before, 2),
        "exit_code": code,
    }
    if found is None:
        entry["error"] = "no BENCH_RESULT line (see the output above)"
    else:
        entry.update(figures=found.get("figures", {}), ok=found.get("ok"))
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.list:
        for name, (script, arguments) in BENCHMARKS.items():
            only = "  (only with --only)" if name in NOT_BY_DEFAULT else ""
            print(f"{name:<14} {script} {' '.join(arguments)}{only}")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or [n for n in BENCHMARKS if n not in NOT_BY_DEFAULT]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; --list shows them")
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    results = {name: run(name, env) for name in names}
    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nsummary ({os.cpu_count()} CPUs), written to {args.out}:")
    failed = 0
    for name, entry in results.items():
        verdict = {True: "met", False: "NOT met", None: "-"}[entry.get("ok")]
        if "error" in entry or entry["exit_code"]:
            verdict, failed = "FAILED", failed + 1
        figures = ", ".join(f"{k} {v}" for k, v in entry.get("figures", {}).items())
        print(f"  {name:<14} {verdict:<8} {entry['seconds']:>7.0f} s  {figures}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

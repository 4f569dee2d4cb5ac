"""Segment build and export benchmark (issue: segments, performance section).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_segments \\
        .venv/bin/python bench/segments/run.py [--members 1000000] [--runs 3] [--keep]

Targets: with 1,000,000 members, 5,000,000 orders and 3,000,000 consent states, the
DESIGN.md example rule builds, funnel included, in under 10 s and within 1.5x the best
hand-written SQL (issue 27: the correlated ``EXISTS`` statement of ``hand.py``); exporting
100,000 members with the consent re-check and DataUsage rows takes under 15 s.

The database DATABASE_URL names is the benchmark's own (it is migrated, filled and reused;
PostgreSQL only, SQLite is refused). Data is generated once, set-based inside PostgreSQL
(generate_series and INSERT … SELECT with deterministic hash expressions, no Python loop
over rows), and reused by later runs while its counts match ``--members``; the
time-relative contact history (sends of the last 30 days) is re-laid relative to "now" on
every run so the frequency cap removes the same people. ``--regenerate`` forces a fresh
data set. Generated data: brand ``bench`` (10 stores on 8 platforms) and a small second
brand ``other`` (2 stores) so brand scoping is real; members (about 15 % in 上海/杭州,
ages 10-70 with some unknown birth dates, unique E.164 phones, spread lifecycle stages,
a few merged and erased), store memberships (about 20 % in two stores, tiers including
gold), orders over the last 2 years (about 10 % guests) with JSON category lists,
ConsentState rows for marketing (sms, email, wechat) and personalization on both brands,
preferences with max_per_week, contact-log sends and suppressions.

Each ConsentState points at a ConsentEvent inserted set-based too (the ledger only
refuses UPDATE/DELETE). Their hashes are placeholders: this benchmark measures segments,
it does not verify the ledger (``bench/consent/run.py`` does), and no ChainHead or
checkpoint rows are written. Member aggregates (order_count, total_spent, …) are not
refreshed from the generated orders; the rules read orders directly.

Measured, each ``--runs`` times (all runs listed, median printed):
a. the product: ``services.request_build(segment, enqueue=False)`` + ``services.run_build``
   for a segment with ``segments.demo.EXAMPLE_RULES`` on marketing/sms, with its funnel;
b. the same logic by hand, each as ONE SQL statement computing the five funnel counts and
   inserting the final members into a scratch table (``hand.py``): ``exists`` (correlated
   per candidate, the best found) and ``grouped`` (aggregate-everything); each checked to
   give the product's counts; the ratio product / exists is the figure;
c. (unless ``--no-export``) ``exports.export_build(build, kind="send")`` of a build limited
   to 100,000 members (re-check, DataUsage and ContactLog rows), then streaming its CSV
   rows with ``segments.queries.export_rows`` fully consumed; the rows an export writes are
   deleted after each run so every run starts from the same state.

``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the build's statements (the rule match
alone, then the funnel statement) and of the hand ``exists`` statement, after the runs.
The last line is ``BENCH_RESULT {json}`` for ``python -m bench``. The load average
(``os.getloadavg``) is printed with each run.

The hand-written statement runs "as of" the product build's start time, so both look at
the same 180-day order window and 7-day cap window. Server settings (work_mem, jit,
parallel workers) are the server's; try others without code changes with e.g.
``PGOPTIONS="-c work_mem=64MB -c jit=off"``. The machine is usually shared: compare
medians and re-run before concluding.

Unless ``--keep`` is given, the segments, builds, exports and the scratch table this run
made are removed at the end (the generated data always stays for the next run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.segments.generate import (  # noqa: E402 - after the path
    META,
    _counts,
    _data_is_current,
    _sql,  # noqa: F401 - bench/dashboard/run.py reads h and _sql from this module
    generate,
    h,  # noqa: F401
    lay_contact_history,
)
from bench.segments.hand import SCRATCH, explain_hand, run_hand  # noqa: E402
from bench.segments.measure import drop_bench_segments, explain_build, run_export, run_product  # noqa: E402

EXPORT_SIZE = 100_000
TARGET_BUILD_S = 10.0
TARGET_RATIO = 1.5
TARGET_EXPORT_S = 15.0
BROAD_RULES = {"all": [{"field": "age", "op": ">=", "value": 18}]}


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("REDIS_URL", None)  # no broker: builds run in this process
    import django

    django.setup()


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep this run's segments, builds and scratch table")
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if it fits")
    parser.add_argument("--no-export", action="store_true", help="time the builds only")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each statement")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "This benchmark needs PostgreSQL (SQLite is not what the targets are about): set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_segments (its own database, which it fills)."
        )
    _setup_django()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark runs on PostgreSQL only.")
    from cdp import audit
    from consent.models import Purpose
    from members.models import Brand
    from segments.demo import EXAMPLE_RULES
    from segments.models import Segment, SegmentBuild, SegmentExport, SegmentMember

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
        current = not args.regenerate and _data_is_current(cur, args.members)
        if current:
            cur.execute(f"SELECT seconds FROM {META}")  # noqa: S608 - constant name
            gen_seconds = cur.fetchone()[0]
    print(f"machine: {os.cpu_count()} cores; PostgreSQL {pg_version}; database {connection.settings_dict['NAME']}")
    if current:
        print(f"data: reusing the generated data set (generation took {gen_seconds:.1f} s when it was made)")
        lay_contact_history(args.members)
        gen_note = f"{gen_seconds:.1f} s (earlier, reused)"
    else:
        print(f"data: generating {args.members:,} members …", flush=True)
        gen_seconds = generate(args.members)
        print(f"data: generated in {gen_seconds:.1f} s")
        gen_note = f"{gen_seconds:.1f} s (this run)"
    with connection.cursor() as cur:
        members, orders, states = _counts(cur)
        cur.execute("SELECT count(*) FROM segments_contactlog WHERE sent_at >= now() - interval '7 days'")
        recent = cur.fetchone()[0]
    print(f"data: {members:,} members, {orders:,} orders, {states:,} consent states, {recent:,} sends in 7 days")

    # 100,000 at the size, proportionally fewer for smaller trial runs.
    export_size = max(1, EXPORT_SIZE * args.members // 1_000_000)
    brand = Brand.objects.get(code="bench")
    purpose = Purpose.objects.get(brand=brand, code="marketing")
    with audit.acting_as(audit.Actor(type="system", label="bench")):
        drop_bench_segments(brand, "bench-")
        example = Segment.objects.create(
            brand=brand, purpose=purpose, channel="sms", slug="bench-example", name="Example", rules=EXAMPLE_RULES
        )
        broad = Segment.objects.create(
            brand=brand,
            purpose=purpose,
            channel="sms",
            slug="bench-broad",
            name="Broad",
            rules=BROAD_RULES,
            limit=export_size,
        )

        # a. + b. alternate product and hand so all see the same cache state.
        product_s, exists_s, grouped_s, loads = [], [], [], []
        funnel = None
        for run in range(1, args.runs + 1):
            loads.append(_load())
            seconds, build = run_product(example)
            product_s.append(seconds)
            funnel = tuple(build.funnel().values())
            print(
                f"build run {run}: {seconds:.3f} s (build.seconds {build.seconds:.3f}), funnel {funnel}; load {loads[-1]}",
                flush=True,
            )
            for kind, times in (("exists", exists_s), ("grouped", grouped_s)):
                seconds, hand_counts = run_hand(example, build.started_at, kind)
                times.append(seconds)
                print(f"hand {kind:<7} run {run}: {seconds:.3f} s, funnel {hand_counts}; load {_load()}", flush=True)
                assert hand_counts == funnel, (
                    f"hand-written SQL ({kind}) {hand_counts} differs from the product {funnel}"
                )
        if args.explain:
            print("\n--- EXPLAIN (ANALYZE, BUFFERS): the build's statements ---")
            print(explain_build(example, build.started_at))
            print("\n--- EXPLAIN (ANALYZE, BUFFERS): hand exists ---")
            print(explain_hand(example, build.started_at, "exists"))

        # c. export
        export_s, stream_s = [], []
        if not args.no_export:
            seconds, broad_build = run_product(broad)
            print(f"broad build (age >= 18, limit {export_size:,}): {seconds:.2f} s, funnel {broad_build.funnel()}")
            assert broad_build.final >= export_size, f"the export build has {broad_build.final}, want {export_size}"
            for run in range(1, args.runs + 1):
                seconds, streamed, exported, rows = run_export(broad_build)
                export_s.append(seconds)
                stream_s.append(streamed)
                print(
                    f"export run {run}: export_build {seconds:.2f} s ({exported:,} let out), "
                    f"export_rows {streamed:.2f} s ({rows:,} rows); load {_load()}",
                    flush=True,
                )
                assert rows == exported

        if not args.keep:
            for segment in (example, broad):
                SegmentExport.objects.filter(build__segment=segment).delete()
                SegmentMember.objects.filter(build__segment=segment).delete()
                Segment.objects.filter(pk=segment.pk).update(current_build=None)
                SegmentBuild.objects.filter(segment=segment).delete()
                segment.delete()
            with connection.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {SCRATCH}")

    product_med, exists_med, grouped_med = (statistics.median(v) for v in (product_s, exists_s, grouped_s))
    ratio = product_med / exists_med
    names = ("matched", "consented", "under_cap", "reachable", "final")

    def ok(flag: bool) -> str:
        return "OK" if flag else "MISSED"

    print()
    print("=" * 92)
    print(f"Segment benchmark — {os.cpu_count()} cores, PostgreSQL {pg_version}; load at the runs {', '.join(loads)}")
    print(f"data: {members:,} members, {orders:,} orders, {states:,} consent states; generation {gen_note}")
    print(f"funnel (product = hand): {', '.join(f'{n} {c:,}' for n, c in zip(names, funnel, strict=True))}")
    print("-" * 92)
    print(f"{'measurement':<44}{'median':>9}  {'target':<14}{'':<7}runs (s)")
    rows = [
        ("build, example rule (request+run_build)", product_med, f"< {TARGET_BUILD_S:.0f} s", product_med < TARGET_BUILD_S, product_s),
        ("hand SQL, correlated EXISTS (best)", exists_med, "", None, exists_s),
        ("hand SQL, grouped", grouped_med, "", None, grouped_s),
        ("ratio product / hand EXISTS", ratio, f"<= {TARGET_RATIO:.1f}", ratio <= TARGET_RATIO, None),
    ]  # fmt: skip
    figures = {
        "members": members,
        "orders": orders,
        "build_s": round(product_med, 4),
        "hand_exists_s": round(exists_med, 4),
        "hand_grouped_s": round(grouped_med, 4),
        "ratio": round(ratio, 3),
        "load": loads,
    }
    if export_s:
        export_med, stream_med = statistics.median(export_s), statistics.median(stream_s)
        total = export_med + stream_med
        rows += [
            (f"export_build send ({export_size:,})", export_med, "", None, export_s),
            ("export_rows streamed", stream_med, "", None, stream_s),
            ("export total (export + rows)", total, f"< {TARGET_EXPORT_S:.0f} s", total < TARGET_EXPORT_S, None),
        ]
        figures["export_s"] = round(total, 3)
    for label, value, target, passed, runs in rows:
        unit = "x" if label.startswith("ratio") else "s"
        verdict = "" if passed is None else ok(passed)
        print(f"{label:<44}{value:>8.3f}{unit}  {target:<14}{verdict:<7}{_runs(runs) if runs else ''}")
    print("=" * 92)
    print("note: the machine is shared; timings are noisy (compare medians, re-run to confirm).")
    print("BENCH_RESULT " + json.dumps({"name": "segments", "figures": figures}, ensure_ascii=False))


if __name__ == "__main__":
    main()

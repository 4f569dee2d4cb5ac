"""Order file import benchmark (issue 26 item 3: order files).

    .venv/bin/python bench/import/orders.py [--rows 1000000] [--runs 3] [--admin-url postgres://postgres@127.0.0.1:5432/postgres]

Generates a Tmall-style order export (``bench/import/data/orders-tmall.csv``, UTF-8 with
BOM, Chinese headers, ``="…"`` order ids, ¥ amounts, masked and clear phones, ~5 %
refunded or closed, ~0.2 % broken rows) if missing, creates a fresh PostgreSQL database
``h8_bench`` with one store and 100,000 members (store member ids and phones), then
imports the file ``--runs`` times with ``manage.py import_orders --json`` in a child
process, emptying the orders before each run, and prints rows/s of each and the median.
Then imports the same file once more on top (the idempotent re-import: 0 created,
0 updated) and prints its rows/s. Target: ≥ 20,000 rows/s at 1M rows.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, recreate_database  # noqa: E402 - after the path

DB_NAME = "h8_bench"
MEMBERS = 100_000
HEADER = ["订单编号", "买家会员名", "买家应付货款", "实付金额", "订单状态", "订单创建时间", "订单付款时间", "退款状态",
          "收货人姓名", "收货地址", "联系手机", "宝贝标题", "宝贝种类", "物流单号"]  # fmt: skip


def phone_of(n: int) -> str:
    return f"138{n:08d}"


def generate(path: Path, rows: int, seed: int = 26) -> None:
    rng = random.Random(seed)
    start = dt.datetime(2025, 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            kind = rng.random()
            buyer = f"tb_{rng.randrange(MEMBERS * 2)}"  # half of them are store members
            phone = phone_of(rng.randrange(MEMBERS * 2)) if kind < 0.6 else "138****0000"
            placed = start + dt.timedelta(seconds=rng.randrange(0, 700 * 86400))
            status, refund = "交易成功", "没有申请退款"
            if kind > 0.97:
                status, refund = "交易关闭", "退款成功"
            elif kind > 0.95:
                status, refund = "交易关闭", ""
            amount = f"¥{rng.randrange(1000, 200000) / 100:.2f}"
            if rng.random() < 0.002:
                amount = "n/a"  # a broken row
            writer.writerow([
                f'="{4000000000000 + i}"', buyer, amount, amount, status, placed.strftime("%Y-%m-%d %H:%M:%S"),
                (placed + dt.timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S"), refund, "张*", "上海市浦东新区**",
                phone, "莲花精华液 30ml", "1", "",
            ])  # fmt: skip


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ, DATABASE_URL=url, CDP_TESTING="1", DJANGO_SETTINGS_MODULE="cdp.settings")
    env.pop("REDIS_URL", None)
    return env


def _manage(url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=_env(url), cwd=ROOT, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return out.stdout


SETUP = f"""
from members.identities import store_member_value
from members.models import Brand, Identity, Member, Store, StoreMembership
brand = Brand.objects.create(code="bench", name="Bench")
store = Store.objects.create(brand=brand, code="bench-tmall", name="bench-tmall", platform="tmall")
members = Member.objects.bulk_create([Member() for _ in range({MEMBERS})], batch_size=5000)
StoreMembership.objects.bulk_create([StoreMembership(member=m, store=store, store_member_id=f"tb_{{i}}")
                                     for i, m in enumerate(members)], batch_size=5000)
Identity.objects.bulk_create([Identity(member=m, kind="store_member", value=store_member_value(store.pk, f"tb_{{i}}"))
                              for i, m in enumerate(members)], batch_size=5000)
Identity.objects.bulk_create([Identity(member=m, kind="phone", value="+86138" + f"{{i + {MEMBERS // 2}:08d}}")
                              for i, m in enumerate(members)], batch_size=5000)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    path = ROOT / "bench" / "import" / "data" / f"orders-tmall-{args.rows}.csv"
    if not path.exists():
        print(f"generating {args.rows:,} rows → {path}")
        generate(path, args.rows)
    recreate_database(args.admin_url, DB_NAME)
    url = bench_url(args.admin_url, DB_NAME)
    _manage(url, "migrate", "--noinput", "-v", "0")
    _manage(url, "shell", "-c", SETUP)
    rates = []
    counts = {}
    for run in range(args.runs):
        _manage(url, "shell", "-c", "from members.models import Order, Member; Order.objects.all().delete(); "
                "Member.objects.update(order_count=0, total_spent=0, first_order_at=None, last_order_at=None, "
                "lifecycle_stage='prospect')")  # fmt: skip
        started = time.monotonic()
        counts = json.loads(_manage(url, "import_orders", str(path), "--store", "bench-tmall", "--json"))
        seconds = time.monotonic() - started
        rates.append(counts["rows"] / seconds)
        print(f"run {run + 1}: {counts['rows']:,} rows in {seconds:.1f} s = {rates[-1]:,.0f} rows/s  {counts}")
    print(f"median: {statistics.median(rates):,.0f} rows/s (target ≥ 20,000)")
    started = time.monotonic()
    again = json.loads(_manage(url, "import_orders", str(path), "--store", "bench-tmall", "--json"))
    seconds = time.monotonic() - started
    print(f"re-import: {again['rows'] / seconds:,.0f} rows/s, created {again['created']}, updated {again['updated']}")
    figures = {"rows": args.rows, "rows_per_s": round(statistics.median(rates)), "target": 20000,
               "reimport_rows_per_s": round(again["rows"] / seconds)}  # fmt: skip
    print(
        "BENCH_RESULT " + json.dumps({"name": "order_import", "ok": figures["rows_per_s"] >= 20000, "figures": figures})
    )


if __name__ == "__main__":
    main()

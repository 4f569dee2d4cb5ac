"""Privacy center benchmark (issue 6).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/privacy/run.py [--members 1000000]

Creates a fresh database ``cdp_bench_privacy`` next to the one DATABASE_URL names, fills it
set-based with --members members (each with a phone and a store identity and a
membership), then adds one heavy shopper with 5,000 orders and 500 consent events (through
``record_consent``) and 200 data-usage rows, and a typical shopper. Then, server-side
through Django's test client (no network): every privacy center page rendered --runs
times for each shopper → median and p95 in ms and the number of queries; and the data
download (zip) of the heavy shopper → median seconds.
Targets: every page < 50 ms median with a flat number of queries; download < 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, give_history, recreate_database  # noqa: E402 - after the path

DB_NAME = "cdp_bench_privacy"
PAGES = ["/privacy/", "/privacy/consents/", "/privacy/preferences/", "/privacy/history/", "/privacy/data/"]


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("CDP_TESTING", "1")
    os.environ.pop("REDIS_URL", None)
    os.environ["ALLOWED_HOSTS"] = "testserver"  # Django's test client, no network
    import django

    django.setup()


def _fill(members: int) -> None:
    """Members, phone and store identities and memberships, set-based (a few statements)."""
    from django.db import connection

    from members.models import Brand, Store

    brand = Brand.objects.create(code="bench", name="基准品牌", color="#c2185b")
    store = Store.objects.create(brand=brand, code="bench-tmall", name="基准天猫店", platform="tmall")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO members_member (status, name, gender, province, city, locale, phone, email, attributes,
                 order_count, total_spent, lifecycle_stage, created_at, updated_at)
               SELECT 'active', '会员' || g, '', '浙江', '杭州', 'zh-hans', '+86139' || lpad(g::text, 8, '0'),
                 'm' || g || '@example.com', '{}', 0, 0, 'prospect', now(), now()
               FROM generate_series(1, %s) g""",
            [members],
        )
        cursor.execute(
            """INSERT INTO members_identity (member_id, kind, value, store_id, created_at)
               SELECT id, 'phone', phone, %s, now() FROM members_member""",
            [store.pk],
        )
        cursor.execute(
            """INSERT INTO members_identity (member_id, kind, value, store_id, created_at)
               SELECT id, 'store_member', %s || ':S' || id, %s, now() FROM members_member""",
            [str(store.pk), store.pk],
        )
        cursor.execute(
            """INSERT INTO members_storemembership (member_id, store_id, store_member_id, tier, points, profile,
                 created_at, updated_at) SELECT id, %s, 'S' || id, '金卡', 100, '{}', now(), now() FROM members_member""",
            [store.pk],
        )
        cursor.execute("ANALYZE")


def _shopper(*, orders: int, events: int, usage: int, index: int):

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from consent import services
    from consent.models import DataUsage, Notice, Purpose
    from members.models import Member, Store
    from privacy.models import PrivacyAccount

    store = Store.objects.get(code="bench-tmall")
    brand = store.brand
    marketing, _ = Purpose.objects.get_or_create(
        brand=brand, code="marketing", defaults={"name": "营销信息", "channels": ["sms", "email"], "is_marketing": True}
    )
    sharing, _ = Purpose.objects.get_or_create(
        brand=brand, code="third_party_sharing", defaults={"name": "向第三方提供", "separate_consent": True}
    )
    for purpose in (marketing, sharing):
        if not Notice.objects.filter(purpose=purpose).exists():
            services.publish_notice(brand=brand, kind="purpose_notice", purpose=purpose, locale="zh-hans",
                                    title=purpose.name, body="告知正文")  # fmt: skip
    member = Member.objects.order_by("id")[index]
    now = timezone.now()
    give_history(member, store, marketing, orders=orders, events=events, prefix="B")
    DataUsage.objects.bulk_create(
        [DataUsage(member=member, brand=brand, purpose=marketing, channel="sms", context_type="segment_export",
                   context_ref=f"campaign-{k}") for k in range(usage)]
    )  # fmt: skip
    user = get_user_model().objects.create(username=f"bench-{member.pk}")
    PrivacyAccount.objects.create(user=user, member=member, linked_at=now)
    return user


def _measure(user, runs: int) -> dict[str, tuple[float, float, int]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    out = {}
    for path in PAGES:
        client.get(path)  # warm up
        times = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        times.sort()
        out[path] = (statistics.median(times), times[int(len(times) * 0.95) - 1], len(queries))
    return out


def _download(user, runs: int) -> tuple[float, int]:
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        location = client.post("/privacy/data/export/")["Location"]
        response = client.get(location)
        times.append(time.perf_counter() - started)
        size = len(response.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="measure again on the database of an earlier run")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://… (the benchmark creates its own database next to it)")
    if args.reuse:
        _setup_django(bench_url(url, DB_NAME))
        from django.core.management import call_command

        from members.models import Member
        from privacy.models import PrivacyAccount

        call_command("migrate", verbosity=0)  # the code may have moved on since the fill

        heavy, typical = (a.user for a in PrivacyAccount.objects.select_related("user").order_by("id")[:2])
        print(f"reusing {DB_NAME}: {Member.objects.count():,} members")
    else:
        recreate_database(url, DB_NAME)
        _setup_django(bench_url(url, DB_NAME))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        _fill(args.members)
        print(f"filled {args.members:,} members in {time.perf_counter() - started:.0f} s")
        heavy = _shopper(orders=5000, events=500, usage=200, index=args.members // 2)
        typical = _shopper(orders=5, events=4, usage=2, index=args.members // 3)
    for label, user in (("typical shopper", typical), ("heavy shopper (5,000 orders, 500 events)", heavy)):
        print(f"\n{label}: page  median ms  p95 ms  queries")
        for path, (median, p95, queries) in _measure(user, args.runs).items():
            print(f"  {path:24} {median:8.1f} {p95:7.1f} {queries:8}")
    seconds, size = _download(heavy, 5)
    print(f"\ndata download (zip) of the heavy shopper: median {seconds:.2f} s, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

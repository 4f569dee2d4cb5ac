"""Segment build and export benchmark (issue: segments, performance section).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cdp_bench_segments \\
        .venv/bin/python bench/segments/run.py [--members 1000000] [--runs 3] [--keep]

Targets (the issue): with 1,000,000 members, 5,000,000 orders and 3,000,000 consent
states, the DESIGN.md example rule builds, funnel included, in under 10 s and within 2x
the time of the same logic written by hand as one SQL statement; exporting 100,000
members with the consent re-check and DataUsage rows takes under 15 s.

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
b. the same logic by hand as ONE SQL statement (a CTE chain computing the funnel counts
   and inserting the final members into a scratch table), checked to give the same counts;
   the ratio product/hand is printed;
c. ``services.export_build(build, kind="send")`` of a build limited to 100,000 members
   (re-check, DataUsage and ContactLog rows), then streaming its CSV rows with
   ``segments.queries.export_rows`` fully consumed; the rows an export writes are deleted
   after each run so every run starts from the same state.

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
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EXPORT_SIZE = 100_000
TARGET_BUILD_S = 10.0
TARGET_RATIO = 2.0
TARGET_EXPORT_S = 15.0
SCRATCH = "bench_hand_final"
META = "bench_segments_meta"
HISTORY_CAMPAIGN = "bench-history"
BROAD_RULES = {"all": [{"field": "age", "op": ">=", "value": 18}]}

# Stores: (code, brand, platform). Brand 1 is the one measured, brand 2 makes scoping real.
STORES = [
    ("bench-tmall", 1, "tmall"),
    ("bench-jd", 1, "jd"),
    ("bench-douyin", 1, "douyin"),
    ("bench-wechat", 1, "wechat"),
    ("bench-xhs", 1, "xiaohongshu"),
    ("bench-pos-sh", 1, "pos"),
    ("bench-pos-hz", 1, "pos"),
    ("bench-pos-bj", 1, "pos"),
    ("bench-web", 1, "website"),
    ("bench-app", 1, "app"),
    ("other-tmall", 2, "tmall"),
    ("other-pos", 2, "pos"),
]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("REDIS_URL", None)  # no broker: builds run in this process
    import django

    django.setup()


def h(expr: str, seed: int, modulo: int) -> str:
    """A deterministic pseudo-random integer in [0, modulo) from a bigint SQL expression
    (``%%`` because every statement using it is run with parameters)."""
    return f"(abs(hashint8extended(({expr})::bigint, {seed})) %% {modulo})"


def _primary_store(member: str) -> str:
    # 10 % of members belong to brand 2 only (stores 11-12), the others to one of brand 1's.
    return f"(CASE WHEN {h(member, 11, 10)} = 0 THEN 11 + {h(member, 12, 2)} ELSE 1 + {h(member, 13, 10)} END)"


def _second_store(member: str) -> str:
    # About 20 % have a second membership, at another store (either brand).
    return f"(1 + ({_primary_store(member)} + {h(member, 15, 11)}) %% 12)"


def _sql(cursor, sql: str, params=None, label: str = "") -> float:
    started = time.perf_counter()
    cursor.execute(sql, params)
    seconds = time.perf_counter() - started
    if label:
        print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


def _drop_secondary_indexes(cursor, tables: list[str]) -> list[str]:
    """Drop the plain (non-constraint) indexes of ``tables`` for a faster load; returns
    their definitions to create them again afterwards."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [tables],
    )
    found = cursor.fetchall()
    for name, _definition in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in found]


# --- Data -------------------------------------------------------------------------------


def _counts(cursor) -> tuple[int, int, int]:
    cursor.execute(
        "SELECT (SELECT count(*) FROM members_member), (SELECT count(*) FROM members_order),"
        " (SELECT count(*) FROM consent_consentstate)"
    )
    return cursor.fetchone()


def _data_is_current(cursor, members: int) -> bool:
    cursor.execute("SELECT to_regclass(%s)", [META])
    if cursor.fetchone()[0] is None:
        return False
    cursor.execute(f"SELECT members, orders, states FROM {META}")  # noqa: S608 - constant name
    row = cursor.fetchone()
    return row is not None and tuple(row) == (members, 5 * members, 3 * members) == _counts(cursor)


def _wipe(cursor) -> None:
    """Empty every table of the data set (TRUNCATE runs no row triggers; the ledger's
    statement trigger refuses TRUNCATE, so it is switched off for this session only)."""
    cursor.execute("SET session_replication_role = replica")
    cursor.execute(
        "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT IN ('django_migrations', 'django_content_type', 'auth_permission')"
    )
    tables = cursor.fetchone()[0]
    cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    cursor.execute("SET session_replication_role = DEFAULT")


def generate(n: int) -> float:
    """Fill the database with ``n`` members, 5n orders and 3n consent states; returns seconds."""
    from django.db import connection

    started = time.perf_counter()
    orders, states = 5 * n, 3 * n
    with connection.cursor() as cur:
        _wipe(cur)
        # Skip foreign-key triggers while loading (the data is consistent by construction).
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET work_mem = '256MB'")
        indexes = _drop_secondary_indexes(cur, ["members_member", "members_order", "consent_consentevent"])
        _sql(
            cur,
            "INSERT INTO members_brand (id, code, name, color, created_at, address, jurisdiction, legal_name,"
            " privacy_email) VALUES (1, 'bench', 'Bench 品牌', '#1f6feb', now(), '', 'CN', '', ''),"
            " (2, 'other', 'Other 品牌', '#1f6feb', now(), '', 'CN', '', '')",
        )
        for i, (code, brand, platform) in enumerate(STORES, start=1):
            cur.execute(
                "INSERT INTO members_store (id, code, name, platform, city, is_active, created_at, brand_id)"
                " VALUES (%s, %s, %s, %s, '', true, now(), %s)",
                [i, code, code, platform, brand],
            )
        # Purposes: 1 bench/marketing, 2 bench/personalization, 3 other/marketing, 4 other/personalization.
        cur.execute(
            "INSERT INTO consent_purpose (id, code, name, description, channels, separate_consent, is_marketing,"
            " is_active, created_at, brand_id) VALUES"
            " (1, 'marketing', '营销', '', '[\"sms\", \"email\", \"wechat\"]', false, true, true, now(), 1),"
            " (2, 'personalization', '个性化', '', '[]', false, false, true, now(), 1),"
            " (3, 'marketing', '营销', '', '[\"sms\", \"email\", \"wechat\"]', false, true, true, now(), 2),"
            " (4, 'personalization', '个性化', '', '[]', false, false, true, now(), 2)"
        )
        cur.execute(
            "INSERT INTO consent_notice (id, kind, locale, version, title, body, sha256, url, published_at,"
            " published_by, brand_id, purpose_id) SELECT p.id, 'purpose_notice', 'zh-hans', 1, 'notice', 'text',"
            " encode(sha256(convert_to(E'notice\\n\\ntext', 'UTF8')), 'hex'), '', now(), 'bench', p.brand_id, p.id"
            " FROM consent_purpose p"
        )
        _sql(
            cur,
            f"""
            INSERT INTO members_member (id, status, merged_into_id, name, gender, birth_date, province, city,
                locale, phone, email, attributes, order_count, total_spent, lifecycle_stage, created_at, updated_at)
            SELECT i,
                CASE WHEN i > 1 AND {h("i", 1, 200)} = 0 THEN 'merged'
                     WHEN {h("i", 1, 200)} = 1 THEN 'erased' ELSE 'active' END,
                CASE WHEN i > 1 AND {h("i", 1, 200)} = 0 THEN i - 1 END,
                'm' || i,
                (ARRAY['M', 'F', 'F', ''])[1 + {h("i", 2, 4)}],
                CASE WHEN {h("i", 3, 100)} < 8 THEN NULL
                     ELSE current_date - (3650 + {h("i", 4, 60 * 365)})::int END,
                c.province, c.city, 'zh-hans',
                CASE WHEN {h("i", 6, 100)} < 3 THEN '' ELSE '+86138' || lpad(i::text, 8, '0') END,
                CASE WHEN {h("i", 7, 100)} < 40 THEN '' ELSE 'm' || i || '@example.com' END,
                '{{}}'::jsonb, 0, 0,
                (ARRAY['prospect', 'new', 'active', 'active', 'loyal', 'at_risk', 'at_risk', 'lapsed'])
                    [1 + {h("i", 8, 8)}],
                now() - make_interval(days => {h("i", 9, 1500)}::int), now()
            FROM generate_series(1, %s) AS i
            CROSS JOIN LATERAL (
                SELECT CASE WHEN {h("i", 5, 100)} < 8 THEN '上海' WHEN {h("i", 5, 100)} < 15 THEN '杭州'
                            ELSE (ARRAY['北京', '广州', '深圳', '成都', '南京', '武汉', '苏州', '西安', '重庆', ''])
                                 [1 + {h("i", 10, 10)}] END AS city
            ) AS pick
            CROSS JOIN LATERAL (
                SELECT pick.city AS city,
                       CASE pick.city WHEN '上海' THEN '上海' WHEN '杭州' THEN '浙江' WHEN '苏州' THEN '江苏'
                            WHEN '南京' THEN '江苏' WHEN '广州' THEN '广东' WHEN '深圳' THEN '广东'
                            ELSE pick.city END AS province
            ) AS c
            """,
            [n],
            label=f"members ({n:,})",
        )
        tier = "(ARRAY['', '', '', 'silver', 'silver', 'gold', 'normal', 'normal'])[1 + {}]"
        _sql(
            cur,
            f"""
            INSERT INTO members_storemembership (id, store_member_id, joined_at, tier, points, created_at,
                updated_at, member_id, store_id)
            SELECT row_number() OVER (), 'S' || m, now() - make_interval(days => {h("m", 21, 1500)}::int),
                   {tier.format(h("m", 22, 8))}, {h("m", 23, 5000)}, now(), now(), m, store
            FROM (
                SELECT m, {_primary_store("m")} AS store FROM generate_series(1, %s) AS m
                UNION ALL
                SELECT m, {_second_store("m")} FROM generate_series(1, %s) AS m WHERE {h("m", 14, 100)} < 20
            ) AS s
            """,
            [n, n],
            label="store memberships",
        )
        # Orders: 90 % by members (uniform over them, at their primary store most of the
        # time), 10 % by guests; over the last 2 years; one or two categories.
        member = f"(1 + {h('j', 31, n)})"
        _sql(
            cur,
            f"""
            INSERT INTO members_order (id, external_id, amount, currency, placed_at, categories, created_at,
                member_id, store_id)
            SELECT j, 'O' || j, round((9.9 + {h("j", 32, 40000)} / 100.0)::numeric, 2), 'CNY',
                   now() - make_interval(secs => {h("j", 33, 730 * 86400)}), cats, now(),
                   CASE WHEN guest THEN NULL ELSE mem END,
                   CASE WHEN guest OR {h("j", 34, 10)} = 0 THEN 1 + {h("j", 35, 12)}
                        ELSE {_primary_store("mem")} END
            FROM (
                SELECT j, {member} AS mem, {h("j", 36, 10)} = 0 AS guest,
                       CASE WHEN {h("j", 37, 3)} = 0
                            THEN jsonb_build_array(c[1 + {h("j", 38, 6)}], c[1 + {h("j", 39, 6)}])
                            ELSE jsonb_build_array(c[1 + {h("j", 38, 6)}]) END AS cats
                FROM generate_series(1, %s) AS j,
                     (SELECT ARRAY['护肤', '彩妆', '香水', '个护', '母婴', '食品'] AS c) AS k
            ) AS o
            """,
            [orders],
            label=f"orders ({orders:,})",
        )
        # Consent: per member a set of (brand, purpose, channel) with probabilities adding up
        # to a little over 3 per member, cut at exactly 3n rows.
        _sql(
            cur,
            f"""
            CREATE TEMP TABLE gen_consent AS
            SELECT row_number() OVER (ORDER BY m.id, k.n) AS id, m.id AS member_id, k.brand_id, k.purpose_id,
                   k.channel,
                   CASE WHEN k.channel = 'email' THEN
                            (ARRAY['confirmed', 'confirmed', 'confirmed', 'requested', 'granted', 'withdrawn'])
                            [1 + {h("m.id * 8 + k.n", 41, 6)}]
                        ELSE (ARRAY['granted', 'granted', 'granted', 'granted', 'granted', 'granted',
                                    'confirmed', 'withdrawn', 'withdrawn', 'withdrawn'])
                            [1 + {h("m.id * 8 + k.n", 41, 10)}] END AS action,
                   now() - make_interval(secs => {h("m.id * 8 + k.n", 42, 700 * 86400)}) AS occurred_at,
                   coalesce(m.birth_date > current_date - 14 * 365 AND {h("m.id", 43, 10)} < 4, false) AS by_guardian
            FROM members_member m
            CROSS JOIN (VALUES (1, 1, 1, 'sms', 93), (2, 1, 1, 'email', 60), (3, 1, 1, 'wechat', 50),
                               (4, 1, 2, '', 70), (5, 2, 3, 'sms', 20), (6, 2, 4, '', 10))
                AS k (n, brand_id, purpose_id, channel, pct)
            WHERE {h("m.id * 8 + k.n", 40, 100)} < k.pct
            ORDER BY m.id, k.n
            LIMIT %s
            """,
            [states],
            label="consent staging",
        )
        _sql(
            cur,
            """
            INSERT INTO consent_consentevent (id, channel, action, occurred_at, recorded_at, source_type,
                source_ref, evidence, by_guardian, external_id, seq, prev_hash, hash, brand_id, member_id,
                store_id, notice_id, purpose_id)
            SELECT id, channel, action, occurred_at, occurred_at, 'import_job', 'bench', '{}', by_guardian, NULL,
                   row_number() OVER (PARTITION BY member_id ORDER BY id), repeat('0', 64), md5(id::text) || md5(''),
                   brand_id, member_id, NULL, purpose_id, purpose_id
            FROM gen_consent
            """,
            label="consent events",
        )
        _sql(
            cur,
            """
            INSERT INTO consent_consentstate (id, channel, action, occurred_at, by_guardian, brand_id, event_id,
                member_id, purpose_id)
            SELECT id, channel, action, occurred_at, by_guardian, brand_id, id, member_id, purpose_id
            FROM gen_consent
            """,
            label=f"consent states ({states:,})",
        )
        cur.execute("DROP TABLE gen_consent")
        # Preferences for 10 % of members at brand 1 (5 % of them want no messages at all).
        _sql(
            cur,
            f"""
            INSERT INTO consent_preference (id, channels, max_per_week, topics, promotion_types, language,
                updated_at, brand_id, member_id)
            SELECT row_number() OVER (), '["sms"]',
                   (ARRAY[1, 1, 1, 1, 2, 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                          NULL, 0])[1 + {h("m", 51, 20)}],
                   '["护肤"]', '["discount"]', 'zh-hans', now(), 1, m
            FROM generate_series(1, %s) AS m WHERE {h("m", 50, 10)} = 0
            """,
            [n],
            label="preferences",
        )
        # Suppressions: brand 1 sms bounces, global phone complaints, brand 2 only (must not count).
        _sql(
            cur,
            f"""
            INSERT INTO consent_suppression (id, channel, value, reason, created_at, note, brand_id)
            SELECT row_number() OVER (), ch, '+86138' || lpad(m::text, 8, '0'), 'bounce', now(), 'bench', b
            FROM generate_series(1, %s) AS m
            CROSS JOIN LATERAL (SELECT CASE {h("m", 61, 3)} WHEN 0 THEN 'sms' WHEN 1 THEN 'phone' ELSE 'sms' END
                                       AS ch,
                                       CASE {h("m", 61, 3)} WHEN 0 THEN 1 WHEN 1 THEN NULL ELSE 2 END AS b) AS s
            WHERE {h("m", 60, 500)} = 0
            """,
            [n],
            label="suppressions",
        )
        started_indexes = time.perf_counter()
        for definition in indexes:
            cur.execute(definition)
        print(f"  indexes: {time.perf_counter() - started_indexes:.1f} s", flush=True)
        cur.execute("SET session_replication_role = DEFAULT")
        for table in (
            "members_brand",
            "members_store",
            "members_member",
            "members_storemembership",
            "members_order",
            "consent_purpose",
            "consent_notice",
            "consent_consentevent",
            "consent_consentstate",
            "consent_preference",
            "consent_suppression",
        ):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {table}),"  # noqa: S608 - constant names
                " false)"
            )
        cur.execute(f"CREATE TABLE IF NOT EXISTS {META} (members int, orders int, states int, seconds float)")
        cur.execute(f"DELETE FROM {META}")  # noqa: S608 - constant name
        cur.execute(f"INSERT INTO {META} VALUES (%s, %s, %s, %s)", [n, orders, states, 0])  # noqa: S608
    lay_contact_history(n)
    with connection.cursor() as cur:
        _sql(cur, "VACUUM ANALYZE", label="VACUUM ANALYZE")
    seconds = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {META} SET seconds = %s", [seconds])  # noqa: S608 - constant name
    return seconds


def lay_contact_history(n: int) -> None:
    """Sends of the last 30 days relative to now (laid again when more than an hour old): a quarter of members got 1-3 messages from
    brand 1 in the last 7 days (so the cap removes some), others older ones, plus brand 2's."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT max(sent_at) > now() - interval '1 hour' FROM segments_contactlog WHERE campaign = %s",
            [HISTORY_CAMPAIGN],
        )
        if cur.fetchone()[0]:
            return  # laid less than an hour ago: the 7-day window still holds the same people
        cur.execute("DELETE FROM segments_contactlog WHERE campaign = %s", [HISTORY_CAMPAIGN])
        _sql(
            cur,
            f"""
            INSERT INTO segments_contactlog (channel, campaign, sent_at, brand_id, member_id, purpose_id,
                export_id)
            SELECT 'sms', %s, now() - make_interval(secs => CASE WHEN recent THEN {h("m * 4 + k", 72, 6 * 86400)}
                                                        ELSE 8 * 86400 + {h("m * 4 + k", 72, 22 * 86400)} END),
                   brand, m, CASE brand WHEN 1 THEN 1 ELSE 3 END, NULL
            FROM generate_series(1, %s) AS m
            CROSS JOIN LATERAL (SELECT {h("m", 70, 100)} < 25 AS recent,
                                       CASE WHEN {h("m", 73, 10)} = 0 THEN 2 ELSE 1 END AS brand) AS r
            CROSS JOIN LATERAL generate_series(1, 1 + {h("m", 71, 3)}) AS k
            WHERE {h("m", 70, 100)} < 40
            """,
            [HISTORY_CAMPAIGN, n],
            label="contact history (last 30 days, relative to now)",
        )
        cur.execute("VACUUM ANALYZE segments_contactlog")


# --- Measurements ----------------------------------------------------------------------------

HAND_SQL = """
WITH brand_stores AS (
    SELECT id FROM members_store WHERE brand_id = %(brand)s
),
matched AS (
    SELECT m.id, m.status, m.birth_date, m.phone
    FROM members_member m
    WHERE m.status <> 'merged'
      AND EXISTS (SELECT 1 FROM members_storemembership sm
                  WHERE sm.member_id = m.id AND sm.store_id IN (SELECT id FROM brand_stores))
      AND m.city IN ('上海', '杭州')
      AND m.birth_date <= %(born_by)s AND m.birth_date > %(born_after)s
      AND m.id IN (SELECT o.member_id FROM members_order o
                   WHERE o.store_id IN (SELECT id FROM brand_stores) AND o.member_id IS NOT NULL
                     AND o.placed_at >= %(since)s
                   GROUP BY o.member_id HAVING count(*) >= 2)
      AND m.id IN (SELECT o.member_id FROM members_order o
                   WHERE o.store_id IN (SELECT id FROM brand_stores) AND o.member_id IS NOT NULL
                   GROUP BY o.member_id HAVING sum(o.amount) > 500)
      AND (m.lifecycle_stage IN ('active', 'at_risk')
           OR EXISTS (SELECT 1 FROM members_storemembership sm
                      WHERE sm.member_id = m.id AND sm.tier = 'gold'
                        AND sm.store_id IN (SELECT id FROM brand_stores)))
),
consented AS (
    SELECT mt.id, mt.phone
    FROM matched mt
    JOIN consent_consentstate cs
      ON cs.member_id = mt.id AND cs.brand_id = %(brand)s AND cs.purpose_id = %(purpose)s
     AND cs.channel = %(channel)s AND cs.action IN ('granted', 'confirmed')
    WHERE mt.status = 'active'
      AND (mt.birth_date IS NULL OR mt.birth_date <= %(minor_cutoff)s OR cs.by_guardian)
),
under_cap AS (
    SELECT c.id, c.phone
    FROM consented c
    LEFT JOIN consent_preference p ON p.member_id = c.id AND p.brand_id = %(brand)s
    LEFT JOIN (SELECT member_id, count(*) AS sent FROM segments_contactlog
               WHERE brand_id = %(brand)s AND sent_at >= %(cap_since)s GROUP BY member_id) cl
      ON cl.member_id = c.id
    WHERE coalesce(cl.sent, 0) < coalesce(p.max_per_week, %(default_cap)s)
),
reachable AS (
    SELECT u.id
    FROM under_cap u
    WHERE u.phone <> ''
      AND NOT EXISTS (SELECT 1 FROM consent_suppression s
                      WHERE s.value = u.phone AND s.channel IN ('sms', 'phone')
                        AND (s.brand_id = %(brand)s OR s.brand_id IS NULL))
),
written AS (
    INSERT INTO bench_hand_final (member_id) SELECT id FROM reachable ORDER BY id RETURNING member_id
)
SELECT (SELECT count(*) FROM matched), (SELECT count(*) FROM consented), (SELECT count(*) FROM under_cap),
       (SELECT count(*) FROM reachable), (SELECT count(*) FROM written)
"""


def hand_params(segment, now: dt.datetime) -> dict:
    from consent.queries import minor_cutoff
    from segments.models import default_max_per_week
    from segments.queries import CAP_WINDOW
    from segments.rules import Context, _years_ago

    ctx = Context.for_brand(segment.brand_id, now)
    default = default_max_per_week(segment.brand_id)
    return {
        "brand": segment.brand_id,
        "purpose": segment.purpose_id,
        "channel": segment.channel,
        "born_by": _years_ago(ctx.today, 25),  # age >= 25
        "born_after": _years_ago(ctx.today, 41),  # age <= 40
        "since": now - dt.timedelta(days=180),
        "minor_cutoff": minor_cutoff(ctx.today),
        "cap_since": now - CAP_WINDOW,
        "default_cap": default if default is not None else 2**31 - 1,
    }


def run_hand(segment, now: dt.datetime) -> tuple[float, tuple[int, ...]]:
    """The hand-written statement as of ``now`` (the product build's start, so both look at
    the same 180-day and 7-day windows)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {SCRATCH} (member_id bigint PRIMARY KEY)")
        cur.execute(f"TRUNCATE {SCRATCH}")
    with transaction.atomic(), connection.cursor() as cur:
        started = time.perf_counter()
        cur.execute(HAND_SQL, hand_params(segment, now))
        counts = tuple(cur.fetchone())
        seconds = time.perf_counter() - started
    return seconds, counts


def run_product(segment):
    from segments import services

    started = time.perf_counter()
    build, created = services.request_build(segment, enqueue=False, actor_label="bench")
    assert created, "a build of this segment was already queued"
    build = services.run_build(build.pk)
    return time.perf_counter() - started, build


def run_export(build) -> tuple[float, float, int, int]:
    from consent.models import DataUsage
    from segments import services
    from segments.models import ContactLog, SegmentExport
    from segments.queries import export_rows

    started = time.perf_counter()
    export = services.export_build(build, kind=SegmentExport.Kind.SEND, campaign="bench", actor_label="bench")
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = sum(1 for _ in export_rows(export, build.segment.channel))
    stream_s = time.perf_counter() - started
    # Undo what the send wrote so the next run starts from the same state.
    ContactLog.objects.filter(export_id=export.pk).delete()
    DataUsage.objects.filter(context_type="segment_export", context_ref=export.context_ref).delete()
    SegmentExport.objects.filter(pk=export.pk).delete()
    return export_s, stream_s, export.exported, rows


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep this run's segments, builds and scratch table")
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if it fits")
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
        # Leftovers of an interrupted or --keep run.
        old = Segment.objects.filter(brand=brand, slug__startswith="bench-")
        SegmentExport.objects.filter(build__segment__in=old).delete()
        SegmentMember.objects.filter(build__segment__in=old).delete()
        old.update(current_build=None)
        SegmentBuild.objects.filter(segment__in=old).delete()
        old.delete()
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

        # a. + b. alternate product and hand so both see the same cache state.
        product_s, hand_s = [], []
        funnel = hand_counts = None
        for run in range(1, args.runs + 1):
            seconds, build = run_product(example)
            product_s.append(seconds)
            funnel = tuple(build.funnel().values())
            print(f"build run {run}: {seconds:.2f} s (build.seconds {build.seconds:.2f}), funnel {funnel}", flush=True)
            seconds, hand_counts = run_hand(example, build.started_at)
            hand_s.append(seconds)
            print(f"hand  run {run}: {seconds:.2f} s, funnel {hand_counts}", flush=True)
            assert hand_counts == funnel, f"hand-written SQL {hand_counts} differs from the product {funnel}"

        # c. export
        seconds, broad_build = run_product(broad)
        print(f"broad build (age >= 18, limit {export_size:,}): {seconds:.2f} s, funnel {broad_build.funnel()}")
        assert broad_build.final >= export_size, f"the export build has {broad_build.final} members, want {export_size}"
        export_s, stream_s = [], []
        for run in range(1, args.runs + 1):
            seconds, streamed, exported, rows = run_export(broad_build)
            export_s.append(seconds)
            stream_s.append(streamed)
            print(
                f"export run {run}: export_build {seconds:.2f} s ({exported:,} let out), "
                f"export_rows {streamed:.2f} s ({rows:,} rows)",
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

    product_med, hand_med = statistics.median(product_s), statistics.median(hand_s)
    ratio = product_med / hand_med
    export_med, stream_med = statistics.median(export_s), statistics.median(stream_s)
    total = export_med + stream_med
    names = ("matched", "consented", "under_cap", "reachable", "final")

    def ok(flag: bool) -> str:
        return "OK" if flag else "MISSED"

    print()
    print("=" * 92)
    print(f"Segment benchmark — {os.cpu_count()} cores, PostgreSQL {pg_version}")
    print(f"data: {members:,} members, {orders:,} orders, {states:,} consent states; generation {gen_note}")
    print(f"funnel (product = hand): {', '.join(f'{n} {c:,}' for n, c in zip(names, funnel, strict=True))}")
    print("-" * 92)
    print(f"{'measurement':<44}{'median':>9}  {'target':<14}{'':<7}runs (s)")
    rows = [
        ("build, example rule (request+run_build)", product_med, f"< {TARGET_BUILD_S:.0f} s", product_med < TARGET_BUILD_S, product_s),
        ("hand-written single SQL statement", hand_med, "", None, hand_s),
        ("ratio product / hand", ratio, f"<= {TARGET_RATIO:.1f}", ratio <= TARGET_RATIO, None),
        (f"export_build send ({export_size:,})", export_med, "", None, export_s),
        ("export_rows streamed", stream_med, "", None, stream_s),
        ("export total (export + rows)", total, f"< {TARGET_EXPORT_S:.0f} s", total < TARGET_EXPORT_S, None),
    ]  # fmt: skip
    for label, value, target, passed, runs in rows:
        unit = "x" if label.startswith("ratio") else "s"
        verdict = "" if passed is None else ok(passed)
        print(f"{label:<44}{value:>8.2f}{unit}  {target:<14}{verdict:<7}{_runs(runs) if runs else ''}")
    print("=" * 92)
    print("note: the machine is shared; timings are noisy (compare medians, re-run to confirm).")


if __name__ == "__main__":
    main()

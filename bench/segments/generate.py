"""The segments benchmark's data set, generated set-based inside PostgreSQL
(``generate_series`` and ``INSERT … SELECT`` with deterministic hash expressions): what it
holds is described in ``run.py``'s docstring. ``bench/dashboard/run.py`` builds on it."""

from __future__ import annotations

import time

META = "bench_segments_meta"
DROPPED = "bench_segments_dropped_indexes"
HISTORY_CAMPAIGN = "bench-history"

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


def h(expr: str, seed: int, modulo: int) -> str:
    """A deterministic pseudo-random integer in [0, modulo) from a bigint SQL expression
    (``%%`` because every statement using it is run with parameters)."""
    return f"(abs(hashint8extended(({expr})::bigint, {seed})) %% {modulo})"


def place_of_member(h) -> str:
    """``CROSS JOIN LATERAL`` clauses giving ``c.city`` and ``c.province`` of member ``i``
    (Shanghai 8 %, Hangzhou 7 %, the rest spread), with the caller's hash expression ``h``
    (the two generators escape ``%`` differently)."""
    return f"""CROSS JOIN LATERAL (
            SELECT CASE WHEN {h("i", 5, 100)} < 8 THEN '上海' WHEN {h("i", 5, 100)} < 15 THEN '杭州'
                        ELSE (ARRAY['北京', '广州', '深圳', '成都', '南京', '武汉', '苏州', '西安', '重庆', ''])
                             [1 + {h("i", 10, 10)}] END AS city
        ) AS pick
        CROSS JOIN LATERAL (
            SELECT pick.city AS city,
                   CASE pick.city WHEN '上海' THEN '上海' WHEN '杭州' THEN '浙江' WHEN '苏州' THEN '江苏'
                        WHEN '南京' THEN '江苏' WHEN '广州' THEN '广东' WHEN '深圳' THEN '广东'
                        ELSE pick.city END AS province
        ) AS c"""


def seed_reference_rows(cur) -> None:
    """The two brands, their stores (``STORES``), two purposes each (1 bench/marketing,
    2 bench/personalization, 3 other/marketing, 4 other/personalization) and a notice per
    purpose: what the segments and scale generators load their members against."""
    cur.execute(
        "INSERT INTO members_brand (id, code, name, color, created_at, address, jurisdiction, legal_name,"
        " privacy_email, language_fallbacks) VALUES"
        " (1, 'bench', 'Bench 品牌', '#1f6feb', now(), '', 'CN', '', '', '[\"zh-hans\", \"en\", \"zh-hant\", \"ru\"]'),"
        " (2, 'other', 'Other 品牌', '#1f6feb', now(), '', 'CN', '', '', '[\"zh-hans\", \"en\", \"zh-hant\", \"ru\"]')"
    )
    for i, (code, brand, platform) in enumerate(STORES, start=1):
        cur.execute(
            "INSERT INTO members_store (id, code, name, platform, city, is_active, created_at, brand_id)"
            " VALUES (%s, %s, %s, %s, '', true, now(), %s)",
            [i, code, code, platform, brand],
        )
    cur.execute(
        "INSERT INTO consent_purpose (id, code, name, name_zh_hans, description, channels, separate_consent,"
        " is_marketing, is_sale_or_sharing, is_active, created_at, brand_id) VALUES"
        " (1, 'marketing', '营销', '营销', '', '[\"sms\", \"email\", \"wechat\"]', false, true, false, true, now(), 1),"
        " (2, 'personalization', '个性化', '个性化', '', '[]', false, false, false, true, now(), 1),"
        " (3, 'marketing', '营销', '营销', '', '[\"sms\", \"email\", \"wechat\"]', false, true, false, true, now(), 2),"
        " (4, 'personalization', '个性化', '个性化', '', '[]', false, false, false, true, now(), 2)"
    )
    cur.execute(
        "INSERT INTO consent_notice (id, kind, locale, version, title, body, change_summary, sha256, url,"
        " published_at, published_by, brand_id, purpose_id) SELECT p.id, 'purpose_notice', 'zh-hans', 1, 'notice',"
        " 'text', '',"
        " encode(sha256(convert_to(E'notice\\n\\ntext', 'UTF8')), 'hex'), '', now(), 'bench', p.brand_id, p.id"
        " FROM consent_purpose p"
    )


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
    # Kept in a table until they are back, so a load that fails half-way (schema drift)
    # does not lose them: the next ``generate`` restores them first.
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {DROPPED} (definition text)")
    for name, definition in found:
        cursor.execute(f"INSERT INTO {DROPPED} VALUES (%s)", [definition])  # noqa: S608 - constant name
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _name, definition in found]


def _restore_dropped_indexes(cursor) -> None:
    cursor.execute("SELECT to_regclass(%s)", [DROPPED])
    if cursor.fetchone()[0] is None:
        return
    cursor.execute(f"SELECT definition FROM {DROPPED}")  # noqa: S608 - constant name
    for (definition,) in cursor.fetchall():
        cursor.execute(
            definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1).replace(
                "CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1
            )
        )
    cursor.execute(f"DROP TABLE {DROPPED}")


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
        _restore_dropped_indexes(cur)
        _wipe(cur)
        # Skip foreign-key triggers while loading (the data is consistent by construction).
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET work_mem = '256MB'")
        indexes = _drop_secondary_indexes(cur, ["members_member", "members_order", "consent_consentevent"])
        seed_reference_rows(cur)
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
            {place_of_member(h)}
            """,
            [n],
            label=f"members ({n:,})",
        )
        tier = "(ARRAY['', '', '', 'silver', 'silver', 'gold', 'normal', 'normal'])[1 + {}]"
        _sql(
            cur,
            f"""
            INSERT INTO members_storemembership (id, store_member_id, joined_at, tier, points, created_at,
                updated_at, member_id, store_id, profile)
            SELECT row_number() OVER (), 'S' || m, now() - make_interval(days => {h("m", 21, 1500)}::int),
                   {tier.format(h("m", 22, 8))}, {h("m", 23, 5000)}, now(), now(), m, store, '{{}}'::jsonb
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
        # time), 10 % by guests; over the last 2 years; one or two categories; 2 % cancelled
        # and 3 % refunded (they count for no rule: ``members.metrics.counted_orders``).
        member = f"(1 + {h('j', 31, n)})"
        _sql(
            cur,
            f"""
            INSERT INTO members_order (id, external_id, amount, currency, placed_at, categories, created_at,
                status, platform_status, member_id, store_id)
            SELECT j, 'O' || j, round((9.9 + {h("j", 32, 40000)} / 100.0)::numeric, 2), 'CNY',
                   now() - make_interval(secs => {h("j", 33, 730 * 86400)}), cats, now(),
                   (CASE {h("j", 30, 100)} WHEN 0 THEN 'cancelled' WHEN 1 THEN 'cancelled' WHEN 2 THEN 'refunded'
                         WHEN 3 THEN 'refunded' WHEN 4 THEN 'refunded' ELSE 'completed' END), '',
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
            INSERT INTO consent_suppression (id, channel, value, value_hash, reason, created_at, note, brand_id)
            SELECT row_number() OVER (), ch, '+86138' || lpad(m::text, 8, '0'), '', 'bounce', now(), 'bench', b
            FROM generate_series(1, %s) AS m
            CROSS JOIN LATERAL (SELECT CASE {h("m", 61, 3)} WHEN 0 THEN 'sms' WHEN 1 THEN 'phone' ELSE 'sms' END
                                       AS ch,
                                       CASE {h("m", 61, 3)} WHEN 0 THEN 1 WHEN 1 THEN NULL ELSE 2 END AS b) AS s
            WHERE {h("m", 60, 500)} = 0
            """,
            [n],
            label="suppressions",
        )
        # Kept as the product keeps them: a keyed hash and a masked label, never in clear.
        from consent.models.preferences import suppression_hash
        from members.masking import mask_phone

        cur.execute("SELECT id, channel, value FROM consent_suppression")
        hashed = [(suppression_hash(channel, value), mask_phone(value), pk) for pk, channel, value in cur.fetchall()]
        cur.executemany("UPDATE consent_suppression SET value_hash = %s, value = %s WHERE id = %s", hashed)
        started_indexes = time.perf_counter()
        for definition in indexes:
            cur.execute(definition)
        cur.execute(f"DROP TABLE IF EXISTS {DROPPED}")
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

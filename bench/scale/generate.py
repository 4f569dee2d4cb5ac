"""The scale benchmark's data set, loaded with COPY.

Every row is computed by PostgreSQL from ``generate_series`` and deterministic hash
expressions (the segments generator's way, ``bench/segments/generate.py``) and streamed
out of one connection with ``COPY (SELECT …) TO STDOUT`` into ``COPY table FROM STDIN``
(FREEZE) on another through psycopg 3's ``cursor.copy``: the load is a COPY of every row,
as an import would send it, while generating the rows costs a second backend (the other
core) rather than Python. Per member ``m`` (ids 1..n):

* ``members_member``: the segments generator's profile mix (cities, ages, lifecycle
  stages, 0.5 % merged, 0.5 % erased, a unique phone ``+86138<m:08>`` for 97 %, an e-mail
  for 60 %).
* stores: brand 1 (``bench``, 10 stores) and brand 2 (``other``, 2 stores); 90 % of members
  belong to one of brand 1's stores, 10 % to one of brand 2's, 20 % to a second store.
* ``members_storemembership`` (1.2 n) and ``members_identity`` (phone, e-mail and one
  ``store_member`` identity per membership: about 2.8 n).
* ``members_order``: 5 n orders, the segments generator's (90 % by members, 10 % guests,
  the last two years, 2 % cancelled, 3 % refunded).
* ``consent_consentevent``: exactly 3 n events, three per member, seq 1-3 at the member's
  brand: marketing/sms (85 % granted), then one of marketing/email (double opt-in:
  confirmed, requested or withdrawn), marketing/wechat or personalization, then in 30 %
  a change of the first (a withdrawal of the SMS grant, or a grant after a refusal), else
  another purpose or channel. ``consent_consentstate`` is the fold of those events (the
  last event per member × brand × purpose × channel: about 2.7 n rows), ``consent_chainhead``
  holds every member's last (seq 3) event. The chain links are consistent (each event's
  ``prev_hash`` is the previous event's ``hash``) but the hashes are placeholders, not
  SHA-256 of the content: ledger verification is not part of this benchmark
  (``bench/consent/run.py`` measures it).
* ``consent_preference`` for 10 % of members (a weekly cap for some).

Secondary indexes are dropped before the load and built after it (timed apart); primary
keys and unique constraints stay. Every big table is emptied with TRUNCATE and filled with
COPY … FREEZE in one transaction, so no VACUUM pass has to rewrite it for hint bits
afterwards; ANALYZE follows. Foreign-key and ledger triggers are off for the loading
session only (``session_replication_role = replica``), the data being consistent by
construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# The segments benchmark's brands, stores, purposes and notices.
from bench.segments.generate import place_of_member, seed_reference_rows

META = "bench_scale_meta"
BIG_TABLES = [
    "members_member",
    "members_identity",
    "members_storemembership",
    "members_order",
    "consent_consentevent",
    "consent_consentstate",
    "consent_chainhead",
    "consent_preference",
]


def h(expr: str, seed: int, modulo: int) -> str:
    """A deterministic pseudo-random integer in [0, modulo) from a bigint SQL expression."""
    return f"(abs(hashint8extended(({expr})::bigint, {seed})) % {modulo})"


def primary_store(m: str) -> str:
    return f"(CASE WHEN {h(m, 11, 10)} = 0 THEN 11 + {h(m, 12, 2)} ELSE 1 + {h(m, 13, 10)} END)"


def second_store(m: str) -> str:
    """Another store than the primary (for the 20 % with ``has_second``)."""
    return f"(1 + ({primary_store(m)} + {h(m, 15, 11)}) % 12)"


def has_second(m: str) -> str:
    return f"({h(m, 14, 100)} < 20)"


def phone(m: str) -> str:
    return f"CASE WHEN {h(m, 6, 100)} < 3 THEN '' ELSE '+86138' || lpad(({m})::text, 8, '0') END"


def email(m: str) -> str:
    return f"CASE WHEN {h(m, 7, 100)} < 40 THEN '' ELSE 'm' || ({m}) || '@example.com' END"


def _hash(event_id: str) -> str:
    """A placeholder of a hash's size, unique per event (cheaper than computing one)."""
    return f"lpad(to_hex(({event_id})::bigint), 64, 'c')"


# --- The rows of each table, as SELECTs over generate_series ------------------------------


def members_sql(n: int) -> tuple[list[str], str]:
    columns = ["id", "status", "merged_into_id", "name", "gender", "birth_date", "province", "city", "locale",
               "phone", "email", "attributes", "order_count", "total_spent", "lifecycle_stage", "created_at",
               "updated_at"]  # fmt: skip
    select = f"""
        SELECT i,
            CASE WHEN i > 1 AND {h("i", 1, 200)} = 0 THEN 'merged' WHEN {h("i", 1, 200)} = 1 THEN 'erased'
                 ELSE 'active' END,
            CASE WHEN i > 1 AND {h("i", 1, 200)} = 0 THEN i - 1 END,
            'm' || i,
            (ARRAY['M', 'F', 'F', ''])[1 + {h("i", 2, 4)}],
            CASE WHEN {h("i", 3, 100)} < 8 THEN NULL ELSE current_date - (3650 + {h("i", 4, 60 * 365)})::int END,
            c.province, c.city, 'zh-hans', {phone("i")}, {email("i")}, '{{}}'::jsonb, 0, 0,
            (ARRAY['prospect', 'new', 'active', 'active', 'loyal', 'at_risk', 'at_risk', 'lapsed'])[1 + {h("i", 8, 8)}],
            now() - make_interval(days => {h("i", 9, 1500)}::int), now()
        FROM generate_series(1, {n}) AS i
        {place_of_member(h)}"""
    return columns, select


def memberships_sql(n: int) -> tuple[list[str], str]:
    columns = ["member_id", "store_id", "store_member_id", "joined_at", "tier", "points", "profile", "created_at",
               "updated_at"]  # fmt: skip
    select = f"""
        SELECT m, s.store, 'S' || m, now() - make_interval(days => {h("m * 2 + s.k", 21, 1500)}::int),
               (ARRAY['', '', '', 'silver', 'silver', 'gold', 'normal', 'normal'])[1 + {h("m * 2 + s.k", 22, 8)}],
               {h("m * 2 + s.k", 23, 5000)}, '{{}}'::jsonb, now(), now()
        FROM generate_series(1, {n}) AS m
        CROSS JOIN LATERAL (VALUES (0, {primary_store("m")}),
                                   (1, CASE WHEN {has_second("m")} THEN {second_store("m")} END)) AS s (k, store)
        WHERE s.store IS NOT NULL"""
    return columns, select


def identities_sql(n: int) -> tuple[list[str], str]:
    columns = ["member_id", "kind", "value", "store_id", "created_at"]
    select = f"""
        SELECT m, k.kind, k.value, k.store, now()
        FROM generate_series(1, {n}) AS m
        CROSS JOIN LATERAL (SELECT {primary_store("m")} AS first, {has_second("m")} AS two) AS s
        CROSS JOIN LATERAL (VALUES
            ('phone', NULLIF({phone("m")}, ''), s.first),
            ('email', NULLIF({email("m")}, ''), s.first),
            ('store_member', s.first || ':S' || m, s.first),
            ('store_member', CASE WHEN s.two THEN {second_store("m")} || ':S' || m END, {second_store("m")})
        ) AS k (kind, value, store)
        WHERE k.value IS NOT NULL"""
    return columns, select


def orders_sql(n: int) -> tuple[list[str], str]:
    columns = ["id", "external_id", "amount", "currency", "placed_at", "categories", "created_at", "status",
               "platform_status", "member_id", "store_id"]  # fmt: skip
    member = f"(1 + {h('j', 31, n)})"
    select = f"""
        SELECT j, 'O' || j, round((9.9 + {h("j", 32, 40000)} / 100.0)::numeric, 2), 'CNY',
               now() - make_interval(secs => {h("j", 33, 730 * 86400)}), cats, now(),
               (CASE {h("j", 30, 100)} WHEN 0 THEN 'cancelled' WHEN 1 THEN 'cancelled' WHEN 2 THEN 'refunded'
                     WHEN 3 THEN 'refunded' WHEN 4 THEN 'refunded' ELSE 'completed' END), '',
               CASE WHEN guest THEN NULL ELSE mem END,
               CASE WHEN guest OR {h("j", 34, 10)} = 0 THEN 1 + {h("j", 35, 12)} ELSE {primary_store("mem")} END
        FROM (
            SELECT j, {member} AS mem, {h("j", 36, 10)} = 0 AS guest,
                   CASE WHEN {h("j", 37, 3)} = 0
                        THEN jsonb_build_array(c[1 + {h("j", 38, 6)}], c[1 + {h("j", 39, 6)}])
                        ELSE jsonb_build_array(c[1 + {h("j", 38, 6)}]) END AS cats
            FROM generate_series(1, {5 * n}) AS j,
                 (SELECT ARRAY['护肤', '彩妆', '香水', '个护', '母婴', '食品'] AS c) AS k
        ) AS o"""
    return columns, select


def _events(n: int) -> str:
    """Three events per member (id 3(m-1)+seq) with ``superseded``: a later event of the
    same member × purpose × channel exists (only the first can be)."""
    return f"""
        SELECT 3 * (m - 1) + e.seq AS id, m AS member_id, p.brand AS brand_id, e.purpose AS purpose_id,
               e.channel, e.action, e.at AS occurred_at, e.seq, e.superseded, p.guardian AS by_guardian
        FROM generate_series(1, {n}) AS m
        CROSS JOIN LATERAL (
            SELECT b AS brand, CASE b WHEN 1 THEN 1 ELSE 3 END AS mk, CASE b WHEN 1 THEN 2 ELSE 4 END AS pers,
                   {h("m", 44, 100)} AS second, {h("m", 45, 100)} < 30 AS change, {h("m", 41, 100)} < 85 AS first_yes,
                   {h("m", 46, 100)} AS r2, {h("m", 47, 100)} AS r3,
                   now() - interval '700 days' + make_interval(secs => {h("m", 42, 300 * 86400)}) AS t1,
                   {h("m", 43, 100)} < 2 AS guardian
            FROM (SELECT CASE WHEN {primary_store("m")} > 10 THEN 2 ELSE 1 END AS b) AS bb
        ) AS p
        CROSS JOIN LATERAL (VALUES
            (1, p.mk, 'sms', CASE WHEN p.first_yes THEN 'granted' ELSE 'withdrawn' END, p.t1, p.change),
            (2, CASE WHEN p.second < 80 THEN p.mk ELSE p.pers END,
                CASE WHEN p.second < 50 THEN 'email' WHEN p.second < 80 THEN 'wechat' ELSE '' END,
                CASE WHEN p.second < 50 THEN (CASE WHEN p.r2 < 60 THEN 'confirmed' WHEN p.r2 < 80 THEN 'requested'
                                                   ELSE 'withdrawn' END)
                     ELSE (CASE WHEN p.r2 < 85 THEN 'granted' ELSE 'withdrawn' END) END,
                p.t1 + make_interval(secs => {h("m", 48, 100 * 86400)}), false),
            (3, CASE WHEN p.change OR p.second >= 80 THEN p.mk ELSE p.pers END,
                CASE WHEN p.change THEN 'sms' WHEN p.second >= 80 THEN 'wechat' ELSE '' END,
                CASE WHEN p.change THEN (CASE WHEN p.first_yes THEN 'withdrawn' ELSE 'granted' END)
                     WHEN p.r3 < 80 THEN 'granted' ELSE 'withdrawn' END,
                p.t1 + make_interval(secs => 100 * 86400 + {h("m", 49, 100 * 86400)}), false)
        ) AS e (seq, purpose, channel, action, at, superseded)"""


def events_sql(n: int) -> tuple[list[str], str]:
    columns = ["id", "member_id", "brand_id", "purpose_id", "channel", "action", "occurred_at", "recorded_at",
               "source_type", "source_ref", "store_id", "notice_id", "evidence", "by_guardian", "external_id", "seq",
               "prev_hash", "hash"]  # fmt: skip
    select = f"""
        SELECT id, member_id, brand_id, purpose_id, channel, action, occurred_at, occurred_at, 'import_job',
               'bench-scale', NULL, purpose_id, '{{"row":' || id || ',"source":"bench-scale"}}', by_guardian, NULL, seq,
               CASE WHEN seq = 1 THEN repeat('0', 64) ELSE {_hash("id - 1")} END, {_hash("id")}
        FROM ({_events(n)}) AS ev"""
    return columns, select


def states_sql(n: int) -> tuple[list[str], str]:
    columns = ["id", "member_id", "brand_id", "purpose_id", "channel", "action", "occurred_at", "event_id",
               "by_guardian"]  # fmt: skip
    select = f"""
        SELECT id, member_id, brand_id, purpose_id, channel, action, occurred_at, id, by_guardian
        FROM ({_events(n)}) AS ev WHERE NOT superseded"""
    return columns, select


def chainheads_sql(n: int) -> tuple[list[str], str]:
    columns = ["member_id", "seq", "hash", "prev_hash"]
    select = f"SELECT m, 3, {_hash('3 * m')}, {_hash('3 * m - 1')} FROM generate_series(1, {n}) AS m"
    return columns, select


def preferences_sql(n: int) -> tuple[list[str], str]:
    columns = ["member_id", "brand_id", "channels", "max_per_week", "topics", "promotion_types", "language",
               "updated_at"]  # fmt: skip
    select = f"""
        SELECT m, CASE WHEN {primary_store("m")} > 10 THEN 2 ELSE 1 END, '["sms"]'::jsonb,
               (ARRAY[1, 1, 1, 1, 2, 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0])
                   [1 + {h("m", 51, 20)}],
               '["护肤"]'::jsonb, '["discount"]'::jsonb, 'zh-hans', now()
        FROM generate_series(1, {n}) AS m WHERE {h("m", 50, 10)} = 0"""
    return columns, select


TABLES: list[tuple[str, Callable[[int], tuple[list[str], str]]]] = [
    ("members_member", members_sql),
    ("members_storemembership", memberships_sql),
    ("members_identity", identities_sql),
    ("members_order", orders_sql),
    ("consent_consentevent", events_sql),
    ("consent_consentstate", states_sql),
    ("consent_chainhead", chainheads_sql),
    ("consent_preference", preferences_sql),
]


# --- Loading -------------------------------------------------------------------------------


def _pipe(source, target, table: str, columns: list[str], select: str, freeze: bool) -> int:
    """COPY the rows of ``select`` (run on ``source``) into ``table`` on ``target``."""
    rows = 0
    buffer = bytearray()
    options = " (FREEZE)" if freeze else ""
    with (
        source.cursor() as out_cur,
        target.cursor() as in_cur,
        out_cur.copy(f"COPY ({select}) TO STDOUT") as out_copy,  # noqa: S608 - generated, no input
        in_cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as in_copy,
    ):
        while data := out_copy.read():
            buffer += data
            rows += 1
            if len(buffer) >= 1 << 20:
                in_copy.write(buffer)
                buffer = bytearray()
        if buffer:
            in_copy.write(buffer)
    return rows


def _secondary_indexes(cur, tables: list[str]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the plain (non-constraint) indexes of ``tables``."""
    cur.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY 1, 2",
        [tables],
    )
    return cur.fetchall()


def load(url: str, n: int, log: Callable[[str], None] = print) -> dict:
    """Fill the (migrated, empty) database ``url`` with ``n`` members and the rest; returns
    the seconds per step and the row counts."""
    import psycopg

    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    started_all = time.perf_counter()
    with psycopg.connect(url) as target, psycopg.connect(url, autocommit=True) as source:
        source.execute("SET work_mem = '64MB'")
        cur = target.cursor()
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET maintenance_work_mem = '2GB'")
        cur.execute("SET work_mem = '256MB'")
        indexes = _secondary_indexes(cur, BIG_TABLES)
        for _table, name, _definition in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute(f"TRUNCATE {', '.join(BIG_TABLES)} CASCADE")
        seed_reference_rows(cur)
        for table, make in TABLES:
            cur.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table])
            freeze = cur.fetchone()[0] == "r"  # COPY FREEZE does not take a partitioned table
            columns, select = make(n)
            started = time.perf_counter()
            counts[table] = _pipe(source, target, table, columns, select, freeze)
            timings[f"copy {table}"] = time.perf_counter() - started
            log(f"  COPY {table}: {counts[table]:,} rows in {timings[f'copy {table}']:.1f} s"
                f" ({counts[table] / max(timings[f'copy {table}'], 1e-9):,.0f} rows/s)")  # fmt: skip
        target.commit()
        timings["copy total"] = time.perf_counter() - started_all
        cur.execute("SET session_replication_role = DEFAULT")
        target.commit()
        by_table: dict[str, float] = {}
        for table, name, definition in indexes:
            started = time.perf_counter()
            # A partitioned parent's index reads "ON ONLY": built again on every partition.
            cur.execute(definition.replace(" ON ONLY ", " ON ", 1))
            target.commit()
            seconds = time.perf_counter() - started
            by_table[table] = by_table.get(table, 0.0) + seconds
            log(f"  index {name}: {seconds:.1f} s")
        for table, seconds in by_table.items():
            timings[f"indexes {table}"] = seconds
        # The ledger's partitions were filled by plain COPY (FREEZE takes no partitioned
        # table): one VACUUM sets their hint bits and visibility map, as autovacuum would.
        started = time.perf_counter()
        target.autocommit = True
        for table in BIG_TABLES:
            cur.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table])
            if cur.fetchone()[0] == "p":
                cur.execute(f"VACUUM {table}")
                timings[f"vacuum {table}"] = time.perf_counter() - started
                log(f"  VACUUM {table}: {timings[f'vacuum {table}']:.1f} s")
        target.autocommit = False
        started = time.perf_counter()
        for table in ["members_brand", "members_store", "consent_purpose", "consent_notice", *BIG_TABLES]:
            column = "member_id" if table == "consent_chainhead" else "id"
            if table != "consent_chainhead":
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" (SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)"  # noqa: S608 - constant names
                )
        target.commit()
        target.autocommit = True
        # The small tables too: with autovacuum off (as on this machine) nothing else would.
        for table in ["members_brand", "members_store", "consent_purpose", "consent_notice", *BIG_TABLES]:
            cur.execute(f"ANALYZE {table}")
        timings["analyze"] = time.perf_counter() - started
        log(f"  ANALYZE: {timings['analyze']:.1f} s")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {META} (members bigint, timings jsonb, counts jsonb)")
        cur.execute(f"DELETE FROM {META}")  # noqa: S608 - constant name
        import json

        timings["total"] = time.perf_counter() - started_all
        cur.execute(f"INSERT INTO {META} VALUES (%s, %s, %s)", [n, json.dumps(timings), json.dumps(counts)])  # noqa: S608
    return {"timings": timings, "counts": counts}


def loaded(url: str) -> dict | None:
    """What an earlier load recorded, or None."""
    import psycopg

    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", [META]).fetchone()[0] is None:
            return None
        row = conn.execute(f"SELECT members, timings, counts FROM {META}").fetchone()  # noqa: S608
    return None if row is None else {"members": row[0], "timings": row[1], "counts": row[2]}

"""The example rule's logic written by hand, the yardsticks the product build is compared
with. Each is ONE SQL statement computing the five funnel counts and inserting the final
members into a scratch table, as the build does.

- ``grouped``: a CTE chain that filters members with ``IN (… GROUP BY … HAVING …)`` over
  the brand's orders and joins the consent, preference and contact-log tables: the
  aggregate-everything style the compiler used to produce.
- ``exists``: starts from the selective member columns (city, birth date) and checks every
  other rule per candidate through existing indexes: correlated ``EXISTS`` (``orders >= 2``
  stops at the second order with ``OFFSET 1 LIMIT 1``), a correlated ``SUM`` for the spend,
  and the consent funnel (consent state, guardian, preferences, sends in the cap window,
  suppression by keyed hash) per candidate as well. The best hand SQL found; the target is
  the build within 1.5x of it (issue 27).

Both run "as of" the product build's start, so the 180-day order window, the minor age
cutoff and the 7-day cap window are the same; ``run.py`` checks the counts agree.
"""

from __future__ import annotations

import datetime as dt
import time

SCRATCH = "bench_hand_final"

# The members.metrics.counted_orders() condition, for the default setting.
_COUNTED = "o.status NOT IN ('cancelled', 'refunded')"
# segments' suppression match: consent.queries._suppressions_of, ErasedValue in SQL.
_PHONE_HASH = (
    "('erased:' || encode(sha256(%(hash_outer)s::bytea || sha256(%(hash_prefix)s::bytea || "
    "convert_to(NULLIF({phone}, ''), 'UTF8'))), 'hex'))"
)

GROUPED_SQL = f"""
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
                     AND o.placed_at >= %(since)s AND {_COUNTED}
                   GROUP BY o.member_id HAVING count(*) >= 2)
      AND m.id IN (SELECT o.member_id FROM members_order o
                   WHERE o.store_id IN (SELECT id FROM brand_stores) AND o.member_id IS NOT NULL AND {_COUNTED}
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
      AND (p.id IS NULL OR jsonb_array_length(p.channels) = 0 OR p.channels ? %(channel)s)
),
reachable AS (
    SELECT u.id
    FROM under_cap u
    WHERE u.phone <> ''
      AND NOT EXISTS (SELECT 1 FROM consent_suppression s
                      WHERE s.value_hash = {_PHONE_HASH.format(phone="u.phone")}
                        AND s.channel IN ('sms', 'phone')
                        AND (s.brand_id = %(brand)s OR s.brand_id IS NULL))
),
written AS (
    INSERT INTO {SCRATCH} (member_id) SELECT id FROM reachable ORDER BY id RETURNING member_id
)
SELECT (SELECT count(*) FROM matched), (SELECT count(*) FROM consented), (SELECT count(*) FROM under_cap),
       (SELECT count(*) FROM reachable), (SELECT count(*) FROM written)
"""  # noqa: S608 - constant names only

# The brand's orders that count, of one candidate ``m``.
_ORDERS = f"""FROM members_order o JOIN members_store s ON s.id = o.store_id
              WHERE o.member_id = m.id AND s.brand_id = %(brand)s AND {_COUNTED}"""

EXISTS_SQL = f"""
WITH f AS MATERIALIZED (
    SELECT m.id,
           -- consent: an allowing state; a minor needs it given by a guardian
           (m.status = 'active' AND EXISTS (
                SELECT 1 FROM consent_consentstate cs
                WHERE cs.member_id = m.id AND cs.brand_id = %(brand)s AND cs.purpose_id = %(purpose)s
                  AND cs.channel = %(channel)s AND cs.action IN ('granted', 'confirmed')
                  AND (m.birth_date IS NULL OR m.birth_date <= %(minor_cutoff)s OR cs.by_guardian))) AS c,
           -- preferences: channel chosen, not paused, fewer sends in the window than the limit
           (NOT EXISTS (SELECT 1 FROM consent_preference p
                        WHERE p.member_id = m.id AND p.brand_id = %(brand)s
                          AND (p.max_per_week = 0
                               OR NOT (jsonb_array_length(p.channels) = 0 OR p.channels ? %(channel)s)))
            AND (SELECT count(*) FROM segments_contactlog cl
                 WHERE cl.member_id = m.id AND cl.brand_id = %(brand)s AND cl.sent_at >= %(cap_since)s)
                < coalesce((SELECT p.max_per_week FROM consent_preference p
                            WHERE p.member_id = m.id AND p.brand_id = %(brand)s), %(default_cap)s)) AS u,
           -- reachable: a phone that is not suppressed
           (m.phone <> '' AND NOT EXISTS (
                SELECT 1 FROM consent_suppression sp
                WHERE sp.value_hash = {_PHONE_HASH.format(phone="m.phone")} AND sp.channel IN ('sms', 'phone')
                  AND (sp.brand_id = %(brand)s OR sp.brand_id IS NULL))) AS r
    FROM members_member m
    WHERE m.city IN ('上海', '杭州')
      AND m.birth_date <= %(born_by)s AND m.birth_date > %(born_after)s
      AND m.status <> 'merged'
      AND EXISTS (SELECT 1 FROM members_storemembership sm JOIN members_store s ON s.id = sm.store_id
                  WHERE sm.member_id = m.id AND s.brand_id = %(brand)s)
      AND (m.lifecycle_stage IN ('active', 'at_risk')
           OR EXISTS (SELECT 1 FROM members_storemembership sm JOIN members_store s ON s.id = sm.store_id
                      WHERE sm.member_id = m.id AND s.brand_id = %(brand)s AND sm.tier = 'gold'))
      AND EXISTS (SELECT 1 {_ORDERS} AND o.placed_at >= %(since)s OFFSET 1 LIMIT 1)
      AND (SELECT sum(o.amount) {_ORDERS}) > 500
),
written AS (
    INSERT INTO {SCRATCH} (member_id) SELECT f.id FROM f WHERE f.c AND f.u AND f.r ORDER BY f.id RETURNING 1
)
SELECT count(*), count(*) FILTER (WHERE f.c), count(*) FILTER (WHERE f.c AND f.u),
       count(*) FILTER (WHERE f.c AND f.u AND f.r), (SELECT count(*) FROM written)
FROM f
"""  # noqa: S608 - constant names only

HAND_SQL = {"grouped": GROUPED_SQL, "exists": EXISTS_SQL}


def hand_params(segment, now: dt.datetime) -> dict:
    from django.conf import settings

    from consent.queries import minor_cutoff
    from members.erasure_sql import _pads
    from segments.models import default_max_per_week
    from segments.queries import CAP_WINDOW
    from segments.rules import Context, years_ago

    ctx = Context.for_brand(segment.brand_id, now)
    inner, outer = _pads(settings.ERASURE_HASH_KEY.encode())
    return {
        "brand": segment.brand_id,
        "purpose": segment.purpose_id,
        "channel": segment.channel,
        "born_by": years_ago(ctx.today, 25),  # age >= 25
        "born_after": years_ago(ctx.today, 41),  # age <= 40
        "since": now - dt.timedelta(days=180),
        "minor_cutoff": minor_cutoff(ctx.today),
        "cap_since": now - CAP_WINDOW,
        # 0 or none: no default limit (consent.queries.weekly_limit)
        "default_cap": default_max_per_week(segment.brand_id) or 2**31 - 1,
        "hash_outer": outer,
        "hash_prefix": inner + b"phone\x00",
    }


def run_hand(segment, now: dt.datetime, kind: str = "exists") -> tuple[float, tuple[int, ...]]:
    """One hand-written statement (``kind``: grouped or exists) as of ``now`` (the product
    build's start, so both look at the same windows), in its own transaction as a build
    is, with the build's transaction settings (``tune_for_set_queries``)."""
    from django.db import connection, transaction

    from segments.services import tune_for_set_queries

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {SCRATCH} (member_id bigint PRIMARY KEY)")
        cur.execute(f"TRUNCATE {SCRATCH}")
    with transaction.atomic(), connection.cursor() as cur:
        started = time.perf_counter()
        tune_for_set_queries()
        cur.execute(HAND_SQL[kind], hand_params(segment, now))
        counts = tuple(cur.fetchone())
        seconds = time.perf_counter() - started
    return seconds, counts


def explain_hand(segment, now: dt.datetime, kind: str = "exists") -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a hand statement, rolled back."""
    from django.db import connection, transaction

    from segments.services import tune_for_set_queries

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {SCRATCH} (member_id bigint PRIMARY KEY)")
        cur.execute(f"TRUNCATE {SCRATCH}")  # rolled back with the rest
        tune_for_set_queries()
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + HAND_SQL[kind], hand_params(segment, now))
        plan = "\n".join(row[0] for row in cur.fetchall())
        transaction.set_rollback(True)
    return plan

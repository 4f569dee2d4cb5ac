"""The example rule's logic written by hand as ONE SQL statement (a CTE chain computing
the funnel counts and inserting the final members into a scratch table), the yardstick
the product build is compared with."""

from __future__ import annotations

import datetime as dt
import time

SCRATCH = "bench_hand_final"

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
    from segments.rules import Context, years_ago

    ctx = Context.for_brand(segment.brand_id, now)
    default = default_max_per_week(segment.brand_id)
    return {
        "brand": segment.brand_id,
        "purpose": segment.purpose_id,
        "channel": segment.channel,
        "born_by": years_ago(ctx.today, 25),  # age >= 25
        "born_after": years_ago(ctx.today, 41),  # age <= 40
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

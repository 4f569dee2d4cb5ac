"""The product's timed runs: a segment build (request and run) and a send export of a
build with its CSV rows streamed, undone afterwards so every run starts alike."""

from __future__ import annotations

import time


def run_product(segment):
    from cdp import audit
    from segments import services

    started = time.perf_counter()
    build, created = services.request_build(segment, enqueue=False, actor=audit.Actor(type="system", label="bench"))
    assert created, "a build of this segment was already queued"
    build = services.run_build(build.pk)
    return time.perf_counter() - started, build


def run_export(build) -> tuple[float, float, int, int]:
    from cdp import audit
    from consent.models import DataUsage
    from segments import exports
    from segments.models import ContactLog, SegmentExport
    from segments.queries import export_rows

    started = time.perf_counter()
    export = exports.export_build(
        build, kind=SegmentExport.Kind.SEND, campaign="bench", actor=audit.Actor(type="system", label="bench")
    )
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = sum(1 for _ in export_rows(export, build.segment.channel))
    stream_s = time.perf_counter() - started
    # Undo what the send wrote so the next run starts from the same state.
    ContactLog.objects.filter(export_id=export.pk).delete()
    DataUsage.objects.filter(context_type="segment_export", context_ref=export.context_ref).delete()
    SegmentExport.objects.filter(pk=export.pk).delete()
    return export_s, stream_s, export.exported, rows


def explain_build(segment, now) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a build's statements as of ``now``, in a transaction
    rolled back, with the build's settings: the rule match alone (a count), then the funnel
    statement as ``services._count_and_write`` runs it on PostgreSQL (rules, the three
    funnel flags per matched member, the INSERT of the final members, the counts)."""
    from django.db import connection, transaction

    from segments import rules as segment_rules
    from segments.models import SegmentBuild, SegmentMember
    from segments.queries import FUNNEL_COUNTS_SQL, flagged_members
    from segments.rules import Context, matching_members
    from segments.services import tune_for_set_queries

    out = []
    with transaction.atomic(), connection.cursor() as cur:
        tune_for_set_queries()
        ctx = Context.for_brand(segment.brand_id, now)
        if hasattr(segment_rules, "order_strategy"):  # older code (a "before" run) has one way only
            ctx = segment_rules.order_strategy(segment.rules, ctx)
        out.append(f"-- order rules read {'per member' if getattr(ctx, 'per_member', False) else 'grouped'}")
        matched = matching_members(segment.rules, ctx).order_by().values("pk")
        sql, params = matched.query.sql_with_params()
        cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM ({sql}) AS m", params)
        out += ["-- rule match", *(row[0] for row in cur.fetchall())]
        sql, params = flagged_members(segment, segment.rules, now).query.sql_with_params()
        build = SegmentBuild.objects.filter(segment=segment).order_by("-pk").first()
        SegmentMember.objects.filter(build=build).delete()  # written again below, all rolled back
        table = connection.ops.quote_name(SegmentMember._meta.db_table)
        cur.execute(
            f"""EXPLAIN (ANALYZE, BUFFERS) WITH f AS MATERIALIZED ({sql}),
                written AS (INSERT INTO {table} (build_id, member_id)
                            SELECT %s, f.member_ref FROM f WHERE f.c AND f.u AND f.r ORDER BY f.member_ref RETURNING 1)
                SELECT {FUNNEL_COUNTS_SQL}, (SELECT COUNT(*) FROM written) FROM f""",
            [*params, build.pk],
        )
        out += [
            "-- funnel statement (rules + consent, cap, reachability flags + insert)",
            *(r[0] for r in cur.fetchall()),
        ]
        transaction.set_rollback(True)
    return "\n".join(out)


def drop_bench_segments(brand, slug_prefix: str) -> None:
    """Remove the segments an earlier (interrupted or ``--keep``) run left, with their
    builds, members and exports, so this run's slugs are free."""
    from segments.models import Segment, SegmentBuild, SegmentExport, SegmentMember

    old = Segment.objects.filter(brand=brand, slug__startswith=slug_prefix)
    SegmentExport.objects.filter(build__segment__in=old).delete()
    SegmentMember.objects.filter(build__segment__in=old).delete()
    old.update(current_build=None)
    SegmentBuild.objects.filter(segment__in=old).delete()
    old.delete()

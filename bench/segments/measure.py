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

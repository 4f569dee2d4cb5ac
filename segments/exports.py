"""Letting a segment's members out: export files (send and review) and reads through the
API. ⚑ Each re-checks the whole contact decision at that moment and leaves a DataUsage row
per person let out, which the person sees in their privacy center."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from cdp import audit
from consent.models import DataUsage
from consent.queries import contactable_q

from .models import ContactLog, Segment, SegmentBuild, SegmentExport, SegmentMember
from .queries import EXPORT_CONTEXT, snapshot_members
from .services import BuildError, insert_select, tune_for_set_queries


@transaction.atomic
def export_build(
    build: SegmentBuild,
    *,
    kind: str = SegmentExport.Kind.SEND,
    campaign: str = "",
    actor: audit.Actor | None = None,
    send_at: dt.datetime | None = None,
) -> SegmentExport:
    """Let a build's members out, re-checking the whole contact decision now (⚑ a withdrawal
    or a changed preference after the build still keeps the person out): consent, chosen
    channel, pause, reachability and, for a send, the weekly limit. With ``send_at``, the
    time the campaign will go out, also quiet hours at that time (and the weekly count runs
    back from it). Every person let out gets a DataUsage row; a send also a ContactLog row.
    All set-based."""
    build = SegmentBuild.objects.select_related("segment__purpose", "segment__brand").get(pk=build.pk)
    segment = build.segment
    if build.status != SegmentBuild.Status.SUCCEEDED:
        raise BuildError(
            gettext("Build #%(id)s has not finished successfully; build the segment again.") % {"id": build.pk}
        )
    if not SegmentMember.objects.filter(build_id=build.pk).exists() and build.final:
        raise BuildError(
            gettext("Build #%(id)s is too old: its members were pruned. Build the segment again.") % {"id": build.pk}
        )
    if kind not in SegmentExport.Kind.values:
        raise BuildError(gettext("Unknown export kind %(kind)r.") % {"kind": kind})
    now = timezone.now()
    export = SegmentExport.objects.create(
        build=build,
        kind=kind,
        campaign=campaign[:200],
        created_by=(actor or audit.current_actor()).label,
        created_at=now,
        in_build=build.final,
    )
    # A file for review contacts nobody, so it is not held back by (nor counted towards)
    # the weekly limit: reviewing a campaign right after sending it still lists everyone.
    allowed = contactable_q(
        segment.brand_id, segment.purpose, segment.channel, at=send_at, now=now, weekly=kind == SegmentExport.Kind.SEND
    )
    tune_for_set_queries()
    # order_by(): Member's default ordering would make PostgreSQL walk a created_at index
    # over every member instead of starting from the build's snapshot rows.
    members = snapshot_members(build.pk).filter(allowed).order_by().values(member_ref=F("pk"))
    usage = {"brand": segment.brand_id, "purpose": segment.purpose_id, "channel": segment.channel}
    exported = insert_select(
        DataUsage,
        {
            **usage,
            "context_type": EXPORT_CONTEXT,
            "context_ref": export.context_ref,
            "campaign": export.campaign,
            "occurred_at": now,
        },
        members,
    )
    if kind == SegmentExport.Kind.SEND:
        sent = DataUsage.objects.filter(occurred_at=now, context_type=EXPORT_CONTEXT, context_ref=export.context_ref)
        insert_select(
            ContactLog,
            {**usage, "export": export.pk, "campaign": export.campaign, "sent_at": now},
            sent.order_by().values(member_ref=F("member_id")),
        )
    SegmentExport.objects.filter(pk=export.pk).update(exported=exported)
    export.exported = exported
    audit.record(
        "segment.exported",
        export,
        changes={"kind": kind, "in_build": export.in_build, "exported": exported, "campaign": export.campaign},
    )
    return export


# DataUsage context of a segment read through the API (see the API issue).
API_READ_CONTEXT = "api_segment_read"


def record_segment_read(
    segment: Segment, *, channel: str, member_ids: list[int], reader: str, now: dt.datetime | None = None
) -> int:
    """Log that these members of ``segment`` left the system through the API (one
    DataUsage row each, one INSERT, so no transaction of its own): the person sees it in
    the privacy center."""
    now = now or timezone.now()
    rows = [
        DataUsage(
            member_id=pk,
            brand_id=segment.brand_id,
            purpose_id=segment.purpose_id,
            channel=channel,
            context_type=API_READ_CONTEXT,
            context_ref=f"{segment.slug} ({reader})"[:200],
            occurred_at=now,
        )
        for pk in member_ids
    ]
    DataUsage.objects.bulk_create(rows, batch_size=2000)
    return len(rows)

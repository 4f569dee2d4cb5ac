"""Every write of the segments app: one verb per function, each its own transaction.

A build is: claim the build row (a conditional UPDATE, so a redelivered task that finds it
finished does nothing) → in one transaction, lock the segment row (two builds of one
segment never overlap), count the funnel in one aggregate query, write the final members
with one INSERT … SELECT, point ``Segment.current_build`` at the new build. A worker killed
half-way rolls the transaction back: no half snapshot, the previous build stays current, and
the redelivered task starts again.

While it runs, the worker keeps the build's heartbeat moving (``cdp.heartbeat``). Beat
marks a running build without one for ``JOBS_STALE_AFTER_SECONDS`` failed, saying so
(``mark_stalled_builds``); a person retries it from the admin (``retry_build``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext

from cdp import audit
from cdp.enqueue import enqueue_on_commit
from cdp.heartbeat import Heartbeat, fail_stalled, last_seen_text
from consent.models import NO_CHANNEL, Purpose
from members.models import Brand

from . import signals
from .models import Segment, SegmentBuild, SegmentMember
from .queries import FUNNEL_COUNTS_SQL, flagged_members
from .replica import match_on_replica
from .rules import RuleError, validate
from .rules.fields import OLDER_NOTICE

log = logging.getLogger(__name__)

ACTIVE = (SegmentBuild.Status.QUEUED, SegmentBuild.Status.RUNNING)


class BuildError(Exception):
    """A build that cannot run or an export that cannot be made, said plainly."""


# --- Segments ---------------------------------------------------------------------------


def segment_problems(*, brand: Brand | None, purpose: Purpose | None, channel: str, rules: Any) -> dict[str, list[str]]:
    """What is wrong with a segment definition, per form field (empty when it is fine)."""
    problems: dict[str, list[str]] = {}
    if purpose is not None and brand is not None and purpose.brand_id != brand.pk:
        problems["purpose"] = [f"{purpose} belongs to another brand."]
    if purpose is not None:
        if purpose.channels and channel not in purpose.channels:
            allowed = ", ".join(purpose.channels)
            problems["channel"] = [f"{purpose} is given per channel: choose one of {allowed}."]
        elif not purpose.channels and channel != NO_CHANNEL:
            problems["channel"] = [f"{purpose} is not about contacting people: leave the channel empty."]
    try:
        validate(rules)
    except RuleError as exc:
        problems["rules"] = exc.messages
    else:
        unknown = _unknown_purpose_codes(brand, rules)
        if unknown:
            problems["rules"] = [
                gettext("%(field)s: %(codes)s are not purposes of %(brand)s.")
                % {"field": OLDER_NOTICE, "codes": ", ".join(unknown), "brand": brand}
            ]
    return problems


def _leaves(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("all", "any"):
        if key in node:
            for child in node[key]:
                yield from _leaves(child)
            return
    if "not" in node:
        yield from _leaves(node["not"])
        return
    yield node


def _unknown_purpose_codes(brand: Brand | None, rules: dict[str, Any]) -> list[str]:
    """Purpose codes in ``older_notice`` rules that are not the brand's (valid rules): a
    typing error that would otherwise quietly match nobody."""
    codes = {code for leaf in _leaves(rules) if leaf["field"] == OLDER_NOTICE for code in leaf["value"]}
    if not codes or brand is None:
        return []
    known = set(Purpose.objects.filter(brand=brand, code__in=codes).values_list("code", flat=True))
    return sorted(codes - known)


def suggest_slug(*, brand: Brand | None, name: str, exclude_pk: int | None = None) -> str:
    """A slug for ``name`` that is free in ``brand``: Chinese written in pinyin
    (``上海短信`` → ``shang-hai-duan-xin``; the admin's own JavaScript only knows Latin,
    Greek and Cyrillic letters), a number added when the brand already has it."""
    from pypinyin import lazy_pinyin

    max_length = Segment._meta.get_field("slug").max_length - 4  # room for "-999"
    base = slugify(" ".join(lazy_pinyin(name)))[:max_length].strip("-") or "segment"
    if brand is None:
        return base
    taken = set(
        Segment.objects.filter(brand=brand, slug__startswith=base).exclude(pk=exclude_pk).values_list("slug", flat=True)
    )
    slug, number = base, 1
    while slug in taken:
        number += 1
        slug = f"{base}-{number}"
    return slug


@transaction.atomic
def save_segment(segment: Segment, *, actor: audit.Actor | None = None) -> Segment:
    """Create or change a segment after checking purpose, channel and rules; keep its beat
    schedule in step. ``actor`` (default: whoever acts now, ``audit.current_actor``) is
    kept as its creator."""
    problems = segment_problems(
        brand=segment.brand, purpose=segment.purpose, channel=segment.channel, rules=segment.rules
    )
    if problems:
        raise ValidationError(problems)
    created = segment.pk is None
    if created and not segment.created_by:
        segment.created_by = (actor or audit.current_actor()).label
    segment.full_clean(exclude=["current_build"])
    segment.save()
    sync_schedule(segment)
    audit.record(
        "segment.created" if created else "segment.changed",
        segment,
        changes={"rules": segment.rules, "purpose": segment.purpose.code, "channel": segment.channel},
    )
    return segment


def sync_schedule(segment: Segment) -> None:
    """One django-celery-beat entry per scheduled segment, named after it."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = f"segment-build:{segment.pk}"
    if not segment.schedule:
        PeriodicTask.objects.filter(name=name).delete()
        return
    minute = str(segment.pk % 60)  # spread segments over the hour
    if segment.schedule == Segment.Schedule.HOURLY:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
        )
    else:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
        )
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": "segments.tasks.scheduled_build",
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps({"segment_id": segment.pk}),
            "enabled": True,
            "description": f"Refresh segment {segment.brand.code}/{segment.slug} ({segment.get_schedule_display()})",
        },
    )


# --- Builds ----------------------------------------------------------------------------


def _abandoned_before() -> dt.datetime:
    # A build still active after the longest a task may run plus the broker's redelivery
    # delay has no worker left that will finish it.
    return timezone.now() - dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + settings.CELERY_VISIBILITY_TIMEOUT)


@transaction.atomic
def request_build(
    segment: Segment, *, actor: audit.Actor | None = None, enqueue: bool = True
) -> tuple[SegmentBuild, bool]:
    """Queue a build of ``segment``; if one is already queued or running, return that one.

    Returns ``(build, created)``. The task is sent after commit.
    """
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    # A running build whose worker died is not joined: it fails now, and a new one starts.
    mark_stalled_builds(segment_id=segment.pk)
    SegmentBuild.objects.filter(segment=segment, status__in=ACTIVE, requested_at__lt=_abandoned_before()).update(
        status=SegmentBuild.Status.FAILED, finished_at=timezone.now(), error="Abandoned: no worker finished it."
    )
    active = SegmentBuild.objects.filter(segment=segment, status__in=ACTIVE).order_by("requested_at").first()
    if active is not None:
        return active, False
    try:
        validate(segment.rules)
    except RuleError as exc:
        raise BuildError(
            gettext("The rules of %(segment)s are not valid: %(problems)s") % {"segment": segment, "problems": exc}
        ) from exc
    build = SegmentBuild.objects.create(
        segment=segment, rules=segment.rules, requested_by=(actor or audit.current_actor()).label
    )
    audit.record("segment.build_requested", build)
    if enqueue:
        enqueue_on_commit("segments.tasks.run_build_task", build.pk)
    return build, True


def insert_select(model: type[Any], constants: dict[str, Any], queryset: QuerySet[Any]) -> int:
    """``INSERT INTO model (constants…, member_id) SELECT constants…, member_ref FROM (queryset)``:
    rows never pass through Python. ``queryset`` selects one column named ``member_ref``.
    Constants are converted by their model fields, as the ORM would store them."""
    inner_sql, inner_params = queryset.query.sql_with_params()
    fields = [model._meta.get_field(name) for name in constants]
    values = [field.get_db_prep_save(constants[field.name], connection) for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in [*fields, model._meta.get_field("member")])
    marks = "".join("%s, " for _ in values)
    select = f"SELECT {marks}sub.member_ref FROM ({inner_sql}) AS sub"  # noqa: S608 - compiled SQL
    sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) {select}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *inner_params])
        return cursor.rowcount


def run_build(build_id: int) -> SegmentBuild | None:
    """Run a queued (or interrupted) build to completion. Safe to call twice: a finished
    build is returned untouched. Returns None when the build no longer exists."""
    now = timezone.now()
    claimed = SegmentBuild.objects.filter(pk=build_id, status__in=ACTIVE).update(
        status=SegmentBuild.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return SegmentBuild.objects.filter(pk=build_id).first()
    try:
        # The build is one transaction, often one long statement: the heartbeat moves from
        # a thread of its own while it runs, and stops when the process dies.
        with Heartbeat(SegmentBuild.objects.filter(pk=build_id, status=SegmentBuild.Status.RUNNING)):
            return _build(build_id)
    except Exception as exc:
        message = str(exc) if isinstance(exc, BuildError | RuleError) else f"{type(exc).__name__}: {exc}"
        SegmentBuild.objects.filter(pk=build_id, status=SegmentBuild.Status.RUNNING).update(
            status=SegmentBuild.Status.FAILED, finished_at=timezone.now(), error=message[:2000]
        )
        log.exception("segment build %s failed", build_id)
        raise


def tune_for_set_queries() -> None:
    """For this transaction only (PostgreSQL): no JIT (compiling these plans costs more than
    running them) and enough memory to hash the rule subqueries."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true)", [settings.SEGMENT_WORK_MEM]
        )


def _count_and_write(flagged: QuerySet[Any], build_id: int, limit: int | None) -> tuple[tuple[int, ...], int]:
    """Count the funnel over the flagged rows and write the final members, evaluating the
    rules once: on PostgreSQL one statement (a materialized CTE feeding both the INSERT and
    the counts), elsewhere two; or on a caught-up read replica (``segments.replica``)."""
    cap = f" LIMIT {int(limit)}" if limit else ""
    final = f"WHERE f.c AND f.u AND f.r ORDER BY f.member_ref{cap}"
    # On a read replica that has replayed past this moment, when there is one (segments.replica).
    on_replica = match_on_replica(flagged, build_id, final)
    if on_replica is not None:
        return on_replica
    sql, params = flagged.query.sql_with_params()
    table = connection.ops.quote_name(SegmentMember._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""WITH f AS MATERIALIZED ({sql}),
                    written AS (INSERT INTO {table} (build_id, member_id)
                                SELECT %s, f.member_ref FROM f {final} RETURNING 1)
                    SELECT {FUNNEL_COUNTS_SQL}, (SELECT COUNT(*) FROM written) FROM f""",  # noqa: S608 - compiled SQL
                [*params, build_id],
            )
            *counts, written = cursor.fetchone()
            return tuple(counts), written
        cursor.execute(f"SELECT {FUNNEL_COUNTS_SQL} FROM ({sql}) AS f", params)  # noqa: S608 - compiled SQL
        counts = tuple(cursor.fetchone())
        cursor.execute(
            f"INSERT INTO {table} (build_id, member_id) SELECT %s, f.member_ref FROM ({sql}) AS f {final}",  # noqa: S608
            [build_id, *params],
        )
        return counts, cursor.rowcount


@transaction.atomic(durable=True)
def _build(build_id: int) -> SegmentBuild:
    build = SegmentBuild.objects.select_related("segment__purpose").get(pk=build_id)
    # The segment row lock is the "one build at a time" lock; it goes away with the
    # transaction, also when the worker holding it is killed.
    segment = Segment.objects.select_for_update().select_related("purpose").get(pk=build.segment_id)
    # Not locked: the heartbeat thread writes to this row while the build runs. The status
    # is read after the segment lock, so a build another worker finished meanwhile is seen.
    build = SegmentBuild.objects.get(pk=build_id)
    if build.status != SegmentBuild.Status.RUNNING:  # finished (or marked failed) meanwhile
        return build
    tune_for_set_queries()
    # One clock for the whole build: every time-relative rule (windows, ages, the minor
    # cutoff, the cap window) is evaluated as of the moment this attempt was claimed.
    flagged = flagged_members(segment, build.rules, build.started_at)
    (matched, consented, under_cap, reachable), written = _count_and_write(flagged, build.pk, segment.limit)
    build.matched, build.consented, build.under_cap, build.reachable = matched, consented, under_cap, reachable
    build.final = written
    build.status = SegmentBuild.Status.SUCCEEDED
    build.finished_at = timezone.now()
    build.error = ""
    # Fenced: if beat marked the build failed meanwhile (no heartbeat), nothing is swapped in.
    if not SegmentBuild.objects.filter(pk=build.pk, status=SegmentBuild.Status.RUNNING).update(
        status=build.status, finished_at=build.finished_at, error="", final=written,
        matched=matched, consented=consented, under_cap=under_cap, reachable=reachable,
    ):  # fmt: skip
        raise BuildError(gettext("Build #%(id)s was marked failed while it ran.") % {"id": build.pk})
    # The atomic swap: readers follow current_build, which changes in this same commit.
    Segment.objects.filter(pk=segment.pk).update(current_build=build)
    audit.record("segment.built", build, changes=build.funnel())
    transaction.on_commit(lambda: prune_snapshots(segment.pk))
    signals.segment_built.send(sender=SegmentBuild, build=build)  # receivers write outbox rows in this transaction
    return build


# --- Stuck builds -----------------------------------------------------------------------


def _stalled_reason(last_seen: Coalesce) -> Concat:
    """The reason a person reads, built in SQL so that marking is one statement."""
    return Concat(
        Value("The worker stopped without finishing; last heard from at "),
        last_seen_text(last_seen),
        Value(
            f" ({settings.TIME_ZONE}). The previous build stays in use. Retry it from the admin, or build the "
            "segment again."
        ),
        output_field=CharField(),
    )


def mark_stalled_builds(*, segment_id: int | None = None, now: dt.datetime | None = None) -> list[int]:
    """Beat's sweep (and ``request_build``'s, for one segment): every running build whose
    worker has not moved its heartbeat for ``JOBS_STALE_AFTER_SECONDS`` is failed with a
    reason a person understands (``cdp.heartbeat.fail_stalled``), then an audit row per
    build marked (usually none). Returns the ids marked."""
    now = now or timezone.now()
    last_seen = Coalesce("heartbeat_at", "started_at", "requested_at")
    running = SegmentBuild.objects.filter(status=SegmentBuild.Status.RUNNING)
    if segment_id is not None:
        running = running.filter(segment_id=segment_id)
    with transaction.atomic():
        ids = fail_stalled(
            running, last_seen=last_seen, failed=SegmentBuild.Status.FAILED, reason_field="error",
            reason=_stalled_reason(last_seen), now=now,
        )  # fmt: skip
        if not ids:
            return []
        for build in SegmentBuild.objects.filter(pk__in=ids).select_related("segment"):
            audit.record("segment.build_stalled", build, changes={"reason": build.error, "attempts": build.attempts})
    log.warning("segment builds marked failed, their workers stopped: %s", ids)
    return ids


@transaction.atomic
def retry_build(build: SegmentBuild) -> SegmentBuild:
    """Queue a failed build again, with the rules it was requested with (the task is sent
    after commit). Only the segment's newest build: an older one would swap older rules
    in over a newer request. Raises ``BuildError`` saying why not."""
    segment = Segment.objects.select_for_update().get(pk=build.segment_id)
    build = SegmentBuild.objects.select_for_update().get(pk=build.pk)
    if build.status != SegmentBuild.Status.FAILED:
        raise BuildError(gettext("Only a failed build can be retried; build #%(id)s is not.") % {"id": build.pk})
    newer = SegmentBuild.objects.filter(segment=segment, requested_at__gt=build.requested_at).exclude(pk=build.pk)
    if newer.exists():
        raise BuildError(
            gettext("Build #%(id)s is not the newest build of %(segment)s: build the segment again instead.")
            % {"id": build.pk, "segment": segment}
        )
    reason = build.error
    # Requested again now: request_build's "abandoned" check counts from this moment.
    SegmentBuild.objects.filter(pk=build.pk).update(
        status=SegmentBuild.Status.QUEUED, error="", finished_at=None, requested_at=timezone.now()
    )
    audit.record("segment.build_retried", build, changes={"reason": reason, "attempts": build.attempts})
    enqueue_on_commit("segments.tasks.run_build_task", build.pk)
    build.refresh_from_db()
    return build


def prune_snapshots(segment_id: int) -> int:
    """Keep the member rows of the newest ``SEGMENT_KEEP_SNAPSHOTS`` successful builds and of
    the current one; older builds keep their funnel counts and history. Exporting a pruned
    build is refused with a message saying to build again."""
    keep = list(
        SegmentBuild.objects.filter(segment_id=segment_id, status=SegmentBuild.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .values_list("pk", flat=True)[: settings.SEGMENT_KEEP_SNAPSHOTS]
    )
    current = Segment.objects.filter(pk=segment_id).values_list("current_build_id", flat=True).first()
    keep.append(current)
    old = SegmentBuild.objects.filter(segment_id=segment_id).exclude(pk__in=[pk for pk in keep if pk])
    deleted, _ = SegmentMember.objects.filter(build__in=old).delete()
    return deleted

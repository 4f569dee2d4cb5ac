"""Stuck builds recover: a build whose worker died is marked failed by beat with a reason
the admin shows, the previous build stays in use, and a retry from the admin builds it
(docs/operations.md, "Stuck work")."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cdp.models import AuditLog
from segments import services, tasks
from segments.models import SegmentBuild, SegmentMember

from .conftest import build, grant, make_segment, shopper

pytestmark = pytest.mark.django_db

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


@pytest.fixture
def segment(brand, tmall, marketing):
    people = [shopper(tmall, city="上海") for _ in range(4)]
    for member in people[:2]:
        grant(member, marketing)
    made = make_segment(brand, marketing, SHANGHAI)
    assert build(made).final == 2
    for member in people[2:]:  # the next build has more people
        grant(member, marketing)
    made.refresh_from_db()
    return made


def stuck_build(segment) -> SegmentBuild:
    """A build its worker claimed, then died on: running, heard from six minutes ago."""
    requested, created = services.request_build(segment, enqueue=False)
    assert created
    long_ago = timezone.now() - dt.timedelta(minutes=6)
    SegmentBuild.objects.filter(pk=requested.pk).update(
        status="running", started_at=long_ago, heartbeat_at=long_ago, attempts=1
    )
    return requested


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")  # the assertions read English
    client.force_login(user)
    return client


def csrf_token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_beat_marks_a_stuck_build_failed_and_the_admin_shows_why(segment, segment_marketer):
    previous = segment.current_build
    stuck = stuck_build(segment)

    assert tasks.mark_stalled_builds() == 1  # what beat runs every minute
    stuck.refresh_from_db()
    assert stuck.status == "failed" and stuck.finished_at is not None
    assert stuck.error.startswith("The worker stopped without finishing; last heard from at ")
    assert timezone.localtime(stuck.heartbeat_at).strftime("%Y-%m-%d %H:%M:%S") in stuck.error
    assert "The previous build stays in use. Retry it from the admin" in stuck.error
    segment.refresh_from_db()
    assert segment.current_build_id == previous.pk
    assert AuditLog.objects.filter(action="segment.build_stalled", object_id=str(stuck.pk)).exists()

    client = csrf_client(segment_marketer)
    page = client.get(reverse("admin:segments_segmentbuild_change", args=[stuck.pk])).content.decode()
    assert "The worker stopped without finishing" in page and "Retry the build" in page
    # The segment's page lists it with its reason, too.
    assert (
        "The worker stopped without"
        in client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    )


def test_retry_from_the_admin_builds_it(segment, segment_marketer, django_capture_on_commit_callbacks):
    stuck = stuck_build(segment)
    services.mark_stalled_builds()
    client = csrf_client(segment_marketer)
    url = reverse("admin:segments_segmentbuild_change", args=[stuck.pk])
    token = csrf_token(client.get(url).content.decode())

    with django_capture_on_commit_callbacks(execute=True):  # the outbox sends the task on commit
        response = client.post(
            reverse("admin:segments_segmentbuild_retry", args=[stuck.pk]), {"csrfmiddlewaretoken": token}, follow=True
        )
    assert response.status_code == 200 and "is queued again" in response.content.decode()
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error, stuck.attempts) == ("succeeded", "", 2)
    assert (stuck.matched, stuck.consented, stuck.final) == (4, 4, 4)
    assert SegmentMember.objects.filter(build_id=stuck.pk).count() == 4
    segment.refresh_from_db()
    assert segment.current_build_id == stuck.pk
    retried = AuditLog.objects.get(action="segment.build_retried", object_id=str(stuck.pk))
    assert retried.actor_label == "segment-marketer" and "worker stopped" in retried.changes["reason"]
    assert AuditLog.objects.filter(action="segment.built", object_id=str(stuck.pk)).count() == 1


def test_retry_needs_a_csrf_token_a_post_and_the_permission(segment, segment_marketer, marketer):
    stuck = stuck_build(segment)
    services.mark_stalled_builds()
    url = reverse("admin:segments_segmentbuild_retry", args=[stuck.pk])
    assert csrf_client(segment_marketer).post(url).status_code == 403  # no token
    assert csrf_client(segment_marketer).get(url).status_code == 405
    client = Client()
    client.force_login(marketer)
    assert client.post(url).status_code == 403
    assert SegmentBuild.objects.get(pk=stuck.pk).status == "failed"


def test_only_the_newest_failed_build_is_retried(segment, segment_marketer, django_capture_on_commit_callbacks):
    stuck = stuck_build(segment)
    services.mark_stalled_builds()
    newer = build(segment)  # someone built the segment again meanwhile
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(segment_marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:segments_segmentbuild_changelist"),
            {"action": "retry_selected", "_selected_action": [stuck.pk, newer.pk]},
            follow=True,
        )
    page = response.content.decode()
    assert "is not the newest build" in page and "Only a failed build can be retried" in page
    assert SegmentBuild.objects.get(pk=stuck.pk).status == "failed"


def test_a_build_with_a_recent_heartbeat_is_left_running(segment):
    requested, _ = services.request_build(segment, enqueue=False)
    SegmentBuild.objects.filter(pk=requested.pk).update(
        status="running", started_at=timezone.now() - dt.timedelta(hours=1), heartbeat_at=timezone.now()
    )
    assert services.mark_stalled_builds() == []
    assert SegmentBuild.objects.get(pk=requested.pk).status == "running"
    # "Build now" joins it: it is alive.
    assert services.request_build(segment, enqueue=False) == (requested, False)


def test_build_now_does_not_join_a_dead_build(segment):
    stuck = stuck_build(segment)
    again, created = services.request_build(segment, enqueue=False)
    assert created and again.pk != stuck.pk
    assert SegmentBuild.objects.get(pk=stuck.pk).status == "failed"
    assert services.run_build(again.pk).final == 4


def test_a_build_marked_failed_while_it_ran_is_not_swapped_in(segment, monkeypatch):
    previous = segment.current_build
    requested, _ = services.request_build(segment, enqueue=False)
    original = services._count_and_write

    def beat_gave_up(*args, **kwargs):
        written = original(*args, **kwargs)
        # Beat's sweep commits on its own connection in production; here, on ours.
        SegmentBuild.objects.filter(pk=requested.pk).update(status="failed")
        return written

    monkeypatch.setattr(services, "_count_and_write", beat_gave_up)
    with pytest.raises(services.BuildError, match="was marked failed while it ran"):
        services.run_build(requested.pk)
    segment.refresh_from_db()
    assert segment.current_build_id == previous.pk
    assert not SegmentMember.objects.filter(build_id=requested.pk).exists()
    assert SegmentBuild.objects.get(pk=requested.pk).status == "failed"

"""Building a segment: the funnel, the atomic swap, one build at a time, the command."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from cdp.models import AuditLog
from consent import services as consent_services
from consent.models import Preference
from segments import services
from segments.demo import EXAMPLE_RULES
from segments.models import ContactLog, ContactPolicy, Segment, SegmentBuild, SegmentMember

from .conftest import build, grant, make_segment, shopper

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


@pytest.fixture
def people(brand, tmall, marketing):
    """Five Shanghai members of the brand; each fails a different funnel step but one."""
    everyone = {name: shopper(tmall) for name in ("ok", "no_consent", "capped", "suppressed", "no_phone")}
    for name in ("ok", "capped", "suppressed", "no_phone"):
        grant(everyone[name], marketing)
    consent_services.update_preferences(
        member=everyone["capped"], brand=brand, source_type="privacy_center", max_per_week=1
    )
    ContactLog.objects.create(member=everyone["capped"], brand=brand, purpose=marketing, channel="sms")
    consent_services.add_suppression(channel="sms", value=everyone["suppressed"].phone, reason="bounce")
    type(everyone["no_phone"]).objects.filter(pk=everyone["no_phone"].pk).update(phone="")
    shopper(tmall, city="北京")  # not matched
    return everyone


def test_funnel_removes_each_kind_of_person_at_its_step(brand, marketing, people):
    segment = make_segment(brand, marketing, SHANGHAI)

    done = build(segment)

    assert done.status == SegmentBuild.Status.SUCCEEDED
    assert done.funnel() == {"matched": 5, "consented": 4, "under_cap": 3, "reachable": 1, "final": 1}
    assert set(SegmentMember.objects.filter(build=done).values_list("member_id", flat=True)) == {people["ok"].pk}
    segment.refresh_from_db()
    assert segment.current_build == done
    assert AuditLog.objects.filter(action="segment.built", object_id=str(done.pk)).exists()


def test_brand_default_cap_applies_to_people_without_their_own(brand, marketing, people):
    ContactPolicy.objects.create(brand=brand, max_per_week=1)
    ContactLog.objects.create(member=people["ok"], brand=brand, purpose=marketing, channel="email")

    assert build(make_segment(brand, marketing, SHANGHAI)).final == 0


def test_zero_messages_a_week_means_none(brand, marketing, people):
    Preference.objects.filter(member=people["capped"]).update(max_per_week=None)
    consent_services.update_preferences(member=people["ok"], brand=brand, source_type="privacy_center", max_per_week=0)

    assert build(make_segment(brand, marketing, SHANGHAI)).funnel()["under_cap"] == 3  # capped is back, ok is out


def test_preferences_remove_people_at_the_frequency_cap_step(brand, marketing, people):
    """A channel not chosen and a pause are preferences like the weekly limit: the funnel
    counts them at its "under frequency cap" step, as ``can_contact`` reasons come after
    consent and before reachability."""
    Preference.objects.filter(member=people["capped"]).update(max_per_week=None)  # back in
    consent_services.update_preferences(
        member=people["ok"], brand=brand, source_type="privacy_center", channels=["wechat", "email"]
    )
    consent_services.update_preferences(
        member=people["no_phone"], brand=brand, source_type="privacy_center", max_per_week=0
    )
    consent_services.update_preferences(  # chose SMS among others, quiet at night: kept (no time of sending)
        member=people["capped"], brand=brand, source_type="privacy_center", channels=["sms", "wechat"],
        quiet_start=dt.time(0), quiet_end=dt.time(23, 59),
    )  # fmt: skip

    done = build(make_segment(brand, marketing, SHANGHAI))

    assert done.funnel() == {"matched": 5, "consented": 4, "under_cap": 2, "reachable": 1, "final": 1}
    assert set(SegmentMember.objects.filter(build=done).values_list("member_id", flat=True)) == {people["capped"].pk}


def test_no_channel_chosen_is_no_limit_on_channels(brand, marketing, people):
    consent_services.update_preferences(
        member=people["ok"], brand=brand, source_type="privacy_center", channels=[], topics=["护肤"]
    )

    assert build(make_segment(brand, marketing, SHANGHAI)).final == 1


def test_limit_keeps_the_lowest_ids(brand, tmall, marketing):
    members = [shopper(tmall) for _ in range(3)]
    for member in members:
        grant(member, marketing)

    done = build(make_segment(brand, marketing, SHANGHAI, limit=2))

    assert (done.reachable, done.final) == (3, 2)
    assert set(SegmentMember.objects.filter(build=done).values_list("member_id", flat=True)) == {
        m.pk for m in members[:2]
    }


def test_other_brands_members_are_not_in_the_population(brand, marketing, tmall):
    from tests.factories import StoreFactory

    outsider = shopper(StoreFactory(code="other", brand__code="other"))
    grant(outsider, marketing)  # even with consent to this brand

    assert build(make_segment(brand, marketing, SHANGHAI)).matched == 0


def test_a_failed_build_leaves_the_previous_one_visible(brand, marketing, people):
    segment = make_segment(brand, marketing, SHANGHAI)
    first = build(segment)

    requested, _ = services.request_build(segment, enqueue=False)
    with (
        mock.patch.object(services, "_count_and_write", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
    ):
        services.run_build(requested.pk)

    requested.refresh_from_db()
    segment.refresh_from_db()
    assert requested.status == SegmentBuild.Status.FAILED
    assert "disk full" in requested.error
    assert segment.current_build == first
    assert not SegmentMember.objects.filter(build=requested).exists()
    assert SegmentMember.objects.filter(build=first).count() == 1


def test_running_a_finished_build_again_changes_nothing(brand, marketing, people):
    done = build(make_segment(brand, marketing, SHANGHAI))

    again = services.run_build(done.pk)

    assert again.pk == done.pk and again.attempts == 1
    assert SegmentMember.objects.filter(build=done).count() == 1


def test_asking_twice_joins_the_build_already_queued(brand, marketing):
    segment = make_segment(brand, marketing, SHANGHAI)
    first, created = services.request_build(segment, enqueue=False)
    second, created_again = services.request_build(segment, enqueue=False)

    assert created and not created_again and first == second


def test_old_snapshots_are_pruned_but_history_stays(
    brand, marketing, people, settings, django_capture_on_commit_callbacks
):
    settings.SEGMENT_KEEP_SNAPSHOTS = 2
    segment = make_segment(brand, marketing, SHANGHAI)
    with django_capture_on_commit_callbacks(execute=True):
        builds = [build(segment) for _ in range(4)]

    kept = set(SegmentMember.objects.values_list("build_id", flat=True))
    assert kept == {builds[2].pk, builds[3].pk}
    assert SegmentBuild.objects.filter(segment=segment, status="succeeded").count() == 4


def test_segment_needs_a_channel_of_its_purpose_and_valid_rules(brand, marketing):
    with pytest.raises(ValidationError) as caught:
        make_segment(brand, marketing, {"all": [{"field": "citty", "op": "=", "value": "x"}]}, channel="post")
    assert "choose one of sms, email, wechat" in str(caught.value.message_dict["channel"])
    assert "unknown field 'citty'" in str(caught.value.message_dict["rules"])


def test_schedule_creates_and_removes_a_beat_entry(brand, marketing):
    from django_celery_beat.models import PeriodicTask

    segment = make_segment(brand, marketing, SHANGHAI, schedule=Segment.Schedule.HOURLY)
    task = PeriodicTask.objects.get(name=f"segment-build:{segment.pk}")
    assert task.task == "segments.tasks.scheduled_build"
    assert json.loads(task.kwargs) == {"segment_id": segment.pk}

    segment.schedule = Segment.Schedule.MANUAL
    services.save_segment(segment)
    assert not PeriodicTask.objects.filter(name=f"segment-build:{segment.pk}").exists()


def test_scheduled_task_builds_in_process(brand, marketing, people):
    from segments.tasks import scheduled_build

    segment = make_segment(brand, marketing, SHANGHAI)
    build_id = scheduled_build.delay(segment.pk).get()  # eager in tests: the build runs on commit

    assert SegmentBuild.objects.get(pk=build_id).segment == segment


# --- The command ------------------------------------------------------------------------


def test_command_prints_the_funnel_as_json_on_the_last_line(brand, marketing, people, capsys):
    make_segment(brand, marketing, EXAMPLE_RULES, slug="sms-at-risk-shanghai")

    call_command("build_segment", "sms-at-risk-shanghai", "--json")

    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert set(result) == {"segment", "build", "matched", "consented", "under_cap", "reachable", "final", "seconds"}
    assert result["segment"] == "sms-at-risk-shanghai"
    assert result["matched"] >= result["consented"] >= result["under_cap"] >= result["reachable"] >= result["final"]


def test_command_names_unknown_and_ambiguous_slugs(brand, marketing):
    with pytest.raises(CommandError, match="No segment with slug 'nope'"):
        call_command("build_segment", "nope")
    from consent.models import Purpose
    from tests.factories import BrandFactory

    other = BrandFactory(code="other")
    make_segment(brand, marketing, SHANGHAI, slug="twice")
    make_segment(
        other, Purpose.objects.create(brand=other, code="m", name="m", channels=["sms"]), SHANGHAI, slug="twice"
    )
    with pytest.raises(CommandError, match="pass --brand CODE"):
        call_command("build_segment", "twice")
    call_command("build_segment", "twice", "--brand", "other")

"""Read replicas against a real PostgreSQL streaming replica (``.ci/replica start``, then
``DATABASE_REPLICA_URLS=postgres://postgres@127.0.0.1:5433``; CI does both).

The replica's replay is paused (``pg_wal_replay_pause()``) to make it lag on purpose: a
withdrawal made meanwhile is on the primary only, and the consent check, a new build, an
export and the person's privacy center must all still say no; an admin list and the
segment editor's count, which read the replica, show the lag, which proves they read it.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import DatabaseError, connections
from django.urls import reverse
from django.utils import timezone

from cdp.db_router import primary_lsn, replayed
from consent.models import Action, ConsentState, DataUsage
from segments import exports
from segments.models import Segment, SegmentExport, SegmentMember
from segments.queries import dry_run_counts
from tests.api.conftest import add_purpose, client_for, make_key
from tests.segments.conftest import build, grant, make_segment, shopper

pytestmark = [
    pytest.mark.skipif(
        "replica" not in settings.DATABASE_REPLICAS,
        reason="needs PostgreSQL with a streaming replica: `.ci/replica start`, then "
        "DATABASE_REPLICA_URLS=postgres://postgres@127.0.0.1:5433 (CI does both)",
    ),
    pytest.mark.django_db(transaction=True, databases=["default", *settings.DATABASE_REPLICAS[:1]]),
]

SHANGHAI = {"all": [{"field": "city", "op": "=", "value": "上海"}]}


def _replica_or_skip() -> None:
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            standby = cursor.fetchone()[0]
    except DatabaseError as exc:
        pytest.skip(f"the replica in DATABASE_REPLICA_URLS does not answer: {exc}")
    if not standby:
        pytest.skip("DATABASE_REPLICA_URLS points at a server that is not a standby")


def caught_up(timeout: float = 30) -> None:
    """Wait until the replica shows everything committed on the primary so far."""
    lsn = primary_lsn()
    deadline = time.monotonic() + timeout
    while not replayed("replica", lsn):
        assert time.monotonic() < deadline, f"the replica did not replay up to {lsn} in {timeout}s"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def replica(settings):
    """The real replica, for this test alone: pytest-xdist workers share it, and one
    worker's pause must not meet another's resume."""
    _replica_or_skip()
    port = connections["replica"].settings_dict["PORT"]
    with open(f"/tmp/cdp-replica-tests-{port}.lock", "w") as lock:  # noqa: S108 - a lock, no data
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _resume()
            caught_up()
            yield "replica"
        finally:
            _resume()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _resume() -> None:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_resume() WHERE pg_is_wal_replay_paused()")


@contextmanager
def replay_paused() -> Iterator[None]:
    """The replica stops applying the primary's changes (they still arrive) until the end."""
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        _resume()


@pytest.fixture
def marketing(brand):
    return add_purpose(brand)


@pytest.fixture
def api(brand, tmall):
    return client_for(make_key(brand)[1])


@pytest.fixture
def alice(tmall, marketing):
    """A Shanghai shopper with SMS marketing on, as the replica knows it too."""
    member = shopper(tmall, name="Alice")
    grant(member, marketing)
    caught_up()
    return member


def check(api, member) -> dict:
    return api.get("/api/v1/consent/check", {"purpose": "marketing", "channel": "sms", "member": member.pk}).json()


def withdraw(api, member) -> None:
    event = {"external_id": f"w{member.pk}", "member": member.pk, "purpose": "marketing", "channel": "sms",
             "action": "withdrawn", "occurred_at": timezone.now().isoformat()}  # fmt: skip
    response = api.post("/api/v1/consent-events/", event)
    assert response.status_code == 201, response.content


def state_on_replica(member) -> str:
    return ConsentState.objects.using("replica").get(member=member, channel="sms").action


def members_of(done) -> set[int]:
    return set(SegmentMember.objects.filter(build=done).values_list("member_id", flat=True))


def test_withdrawal_the_replica_has_not_replayed_still_says_no_everywhere(api, brand, marketing, alice, settings):
    settings.BUILD_REPLICA_MAX_WAIT = 1
    segment = make_segment(brand, marketing, SHANGHAI)
    with replay_paused():
        withdraw(api, alice)
        assert state_on_replica(alice) == Action.GRANTED  # the replica would lie

        assert check(api, alice) == {**check(api, alice), "allowed": False, "reason": "withdrawn"}
        done = build(segment)  # the replica is behind the build's start: the primary matches
        assert done.funnel() == {"matched": 1, "consented": 0, "under_cap": 0, "reachable": 0, "final": 0}
        export = exports.export_build(done, kind=SegmentExport.Kind.SEND, campaign="双12")
        assert export.exported == 0
        assert not DataUsage.objects.filter(member=alice, context_type="segment_export").exists()
    caught_up()
    assert state_on_replica(alice) == Action.WITHDRAWN


def test_build_matches_on_a_caught_up_replica_and_the_export_rechecks_on_the_primary(
    api, brand, marketing, alice, tmall, caplog
):
    bob = shopper(tmall, name="Bob")
    grant(bob, marketing)
    segment = make_segment(brand, marketing, SHANGHAI)
    with caplog.at_level(logging.INFO, logger="segments.replica"):
        done = build(segment)
    assert f"segment build {done.pk} matched on replica replica" in caplog.text
    assert members_of(done) == {alice.pk, bob.pk}

    with replay_paused():
        withdraw(api, alice)  # after the build: only the export can keep her out
        assert state_on_replica(alice) == Action.GRANTED
        assert check(api, alice)["allowed"] is False
        export = exports.export_build(done, kind=SegmentExport.Kind.SEND, campaign="双12")
    assert (export.in_build, export.exported) == (2, 1)
    assert set(DataUsage.objects.filter(context_type="segment_export").values_list("member_id", flat=True)) == {bob.pk}


@pytest.fixture
def funnel_people(brand, tmall, marketing):
    """Shanghai shoppers failing different steps (tests/segments/test_builds.py), and one elsewhere."""
    ok, no_consent, no_phone, capped = (shopper(tmall) for _ in range(4))
    for member in (ok, no_phone, capped):
        grant(member, marketing)
    type(no_phone).objects.filter(pk=no_phone.pk).update(phone="")
    from consent import services as consent_services
    from segments.models import ContactLog

    consent_services.update_preferences(member=capped, brand=brand, source_type="privacy_center", max_per_week=1)
    ContactLog.objects.create(member=capped, brand=brand, purpose=marketing, channel="sms")
    shopper(tmall, city="北京")
    caught_up()
    return ok


@pytest.mark.parametrize("limit", [None, 1])
def test_a_build_on_the_replica_equals_one_on_the_primary(brand, marketing, funnel_people, settings, caplog, limit):
    segment = make_segment(brand, marketing, SHANGHAI, limit=limit)
    with caplog.at_level(logging.INFO, logger="segments.replica"):
        on_replica = build(segment)
    assert "matched on replica" in caplog.text
    settings.BUILD_REPLICA_MAX_WAIT = 0  # builds stay on the primary
    on_primary = build(Segment.objects.get(pk=segment.pk))

    assert on_replica.funnel() == on_primary.funnel()
    assert on_replica.funnel() == {"matched": 4, "consented": 3, "under_cap": 2, "reachable": 1, "final": 1}
    assert members_of(on_replica) == members_of(on_primary) == {funnel_people.pk}


def test_privacy_center_shows_what_the_person_just_chose(client, brand, tmall, marketing, alice):
    from django.contrib.auth import get_user_model

    from privacy.models import PrivacyAccount

    user = get_user_model().objects.create(username="alice", email="alice@example.com")
    PrivacyAccount.objects.create(user=user, member=alice, linked_at=timezone.now())
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    with replay_paused():
        response = client.post("/privacy/consents/set/", {"purpose": marketing.pk, "channel": "sms", "value": "off"})
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert state_on_replica(alice) == Action.GRANTED
    switch = page.split(f'id="p-{marketing.pk}-sms"')[1].split("</form>")[0]
    assert 'aria-checked="false"' in switch


def test_admin_lists_and_the_editor_count_read_the_replica(client, superuser, brand, tmall, marketing, alice):
    client.force_login(superuser)
    segment = make_segment(brand, marketing, SHANGHAI, slug="lotus-spring-list")
    caught_up()
    with replay_paused():
        late = make_segment(brand, marketing, SHANGHAI, slug="lotus-paused-list")
        grant(shopper(tmall, name="Carol"), marketing)
        listed = client.get(reverse("admin:segments_segment_changelist")).content.decode()
        assert segment.name in listed and late.name not in listed  # the replica's list
        assert dry_run_counts(segment)["consented"] == 1  # Carol not yet on the replica
        assert client.get(reverse("admin:segments_segment_change", args=[late.pk])).status_code == 200  # the primary
    caught_up()
    assert late.name in client.get(reverse("admin:segments_segment_changelist")).content.decode()
    assert dry_run_counts(segment)["consented"] == 2


def test_after_an_admin_post_the_list_waits_for_the_replica_to_replay_it(client, superuser, brand, marketing):
    client.force_login(superuser)
    changelist = reverse("admin:segments_segment_changelist")
    caught_up()
    with replay_paused():
        late = make_segment(brand, marketing, SHANGHAI, slug="lotus-after-post")
        assert late.name not in client.get(changelist).content.decode()  # the replica's list
        # Any change through the admin (here an action run on nothing) marks the session.
        response = client.post(changelist, {"action": "delete_selected", "index": 0}, follow=True)
        assert response.status_code == 200
        assert late.name in response.content.decode()  # the page it lands on reads the primary
        assert late.name in client.get(changelist).content.decode()
    caught_up()
    client.get(changelist)  # the replica has replayed the write: the mark is dropped
    assert "cdp_wrote_lsn" not in client.session


def test_dashboard_figures_are_counted_on_the_replica(brand, tmall, alice):
    from insights.services import refresh_figures

    with replay_paused():
        shopper(tmall, name="Carol")
        figures = refresh_figures(brand=brand)  # counted on the replica, stored on the primary
        assert figures.data["members"] == {str(tmall.pk): 1}
    caught_up()
    assert refresh_figures(brand=brand).data["members"] == {str(tmall.pk): 2}

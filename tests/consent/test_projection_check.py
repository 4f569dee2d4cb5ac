"""A hand-edited projection is caught (issue 22, item 7): ``rebuild_consent_state --check``
compares every column of every ConsentState row with the fold of the ledger and names the
rows that differ; the recorded verification (the command and the nightly task) does too.

The ledger refuses changes (triggers), ConsentState does not: the tests edit it the way
someone with SQL access would, and look at what the consent API answers."""

from __future__ import annotations

import datetime as dt
import io
import json
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cdp import audit
from cdp.api_keys import issue_api_key
from cdp.models import ApiKey, ApiKeyScope
from consent import services, tasks
from consent.models import ConsentEvent, ConsentState, LedgerVerification
from consent.services.projection import COLUMNS
from members.models import Member, StoreMembership
from tests.consent.test_ledger import NOW, grant
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(brand, tmall, marketing_purpose):
    """A member at the brand's Tmall store who granted SMS marketing an hour ago and
    withdrew it ten minutes ago."""
    member = MemberFactory(phone="+8613800138000")
    StoreMembership.objects.create(member=member, store=tmall, store_member_id="T1")
    grant(member, brand, action="granted", minutes_ago=60)
    grant(member, brand, action="withdrawn", minutes_ago=10)
    return member


@pytest.fixture
def api(brand):
    from consent import api as consent_api

    consent_api._purposes.clear()  # the purpose cache of the process, keyed by ids
    _key, raw = issue_api_key(
        ApiKey(name="check", brand=brand, scopes=[ApiKeyScope.CONSENT_READ]),
        actor=audit.Actor(type="system", label="tests"),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    yield client
    consent_api._purposes.clear()


def allowed(api, member) -> bool:
    response = api.get("/api/v1/consent/check", {"member": member.pk, "purpose": "marketing", "channel": "sms"})
    assert response.status_code == 200, response.content
    return response.json()["allowed"]


def state_of(member):
    return ConsentState.objects.filter(member_id=member.pk, channel="sms")


def check(*args: str) -> tuple[int, str, str]:
    """Run ``rebuild_consent_state --check``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rebuild_consent_state", "--check", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"{err.getvalue()}{exc}"
    return 0, out.getvalue(), err.getvalue()


def verify() -> tuple[int, dict]:
    """Run ``verify_consent_ledger --json``: exit code and the JSON it printed."""
    out = io.StringIO()
    try:
        call_command("verify_consent_ledger", "--json", stdout=out)
    except CommandError as exc:
        return exc.returncode, json.loads(out.getvalue().strip().splitlines()[-1]) | {"message": str(exc)}
    return 0, json.loads(out.getvalue().strip().splitlines()[-1])


def test_the_check_covers_every_column_of_consent_state():
    """A column added to ConsentState must be added to the check (and the fold)."""
    columns = {f.column for f in ConsentState._meta.concrete_fields if not f.primary_key}
    assert set(COLUMNS) == columns


def test_a_state_hand_edited_to_granted_is_caught_and_a_rebuild_puts_the_ledger_back(alice, brand, api):
    assert not allowed(api, alice)
    assert check()[0] == 0
    state_of(alice).update(action="granted")  # UPDATE consent_consentstate SET action = 'granted' …
    assert allowed(api, alice)  # what the issue is about: the API now believes the edit

    code, _out, err = check()
    assert code == 1
    assert f"member {alice.pk}, brand lotus, purpose marketing, channel sms: action granted (ledger: withdrawn)" in err
    assert "differs from the ledger in 1 row" in err
    assert state_of(alice).get().action == "granted"  # --check changes nothing

    call_command("rebuild_consent_state", stdout=io.StringIO())
    assert not allowed(api, alice)
    assert state_of(alice).get().event == ConsentEvent.objects.filter(member=alice).order_by("-pk").first()
    code, out, _err = check()
    assert code == 0 and "consent state equals the fold of the ledger" in out


@pytest.mark.parametrize("field", ["action", "occurred_at", "event_id", "by_guardian"])
def test_every_column_is_compared(alice, brand, field):
    first = ConsentEvent.objects.filter(member=alice).order_by("pk").first()
    edits = {
        "action": "granted",
        "occurred_at": NOW - dt.timedelta(minutes=5),
        "event_id": first.pk,
        "by_guardian": True,
    }
    state_of(alice).update(**{field: edits[field]})
    code, _out, err = check()
    assert code == 1
    [line] = [line for line in err.splitlines() if line.startswith(f"member {alice.pk},")]
    assert line.split(": ", 1)[1].startswith(f"{field} ")
    assert line.count("(ledger: ") == 1  # only the edited column is named


def test_a_missing_state_row_is_caught(alice, brand):
    state_of(alice).delete()
    code, _out, err = check()
    assert code == 1
    assert f"member {alice.pk}, brand lotus, purpose marketing, channel sms: no state row" in err
    assert "action=withdrawn" in err


def test_a_state_row_without_events_is_caught(alice, brand, marketing_purpose):
    """A row added by hand, for a channel the person never chose anything for."""
    event = ConsentEvent.objects.filter(member=alice).first()
    ConsentState.objects.create(
        member=alice, brand=brand, purpose=marketing_purpose, channel="email", action="confirmed",
        occurred_at=NOW, event=event,
    )  # fmt: skip
    code, _out, err = check()
    assert code == 1
    assert f"member {alice.pk}, brand lotus, purpose marketing, channel email: state row action=confirmed" in err
    assert "but no event in the ledger" in err


def test_many_differences_are_counted_in_one_statement_and_the_first_named(brand, marketing_purpose):
    people = [MemberFactory() for _ in range(6)]
    for person in people:
        grant(person, brand, action="withdrawn", minutes_ago=1)

    def queries_of_a_check() -> int:
        with CaptureQueriesContext(connection) as captured:
            services.check_projection(limit=2)
        return len([q for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]])

    ConsentState.objects.filter(member=people[0]).update(action="granted")
    one = queries_of_a_check()
    ConsentState.objects.update(action="granted")
    assert queries_of_a_check() == one  # the comparison, then the codes of the named rows

    found = services.check_projection(limit=2)
    assert (found.ok, found.count, len(found.differences)) == (False, 6, 2)
    assert [d.member_id for d in found.differences] == sorted(p.pk for p in people)[:2]
    assert [d.fields for d in found.differences] == [["action"], ["action"]]
    code, _out, err = check("--limit", "3")
    assert code == 1 and "in 6 rows (3 named above)" in err
    assert len([line for line in err.splitlines() if line.startswith("member ")]) == 3


def test_merged_people_check_clean_and_a_row_left_on_the_absorbed_member_is_extra(brand, marketing_purpose):
    survivor, absorbed = MemberFactory(), MemberFactory()
    grant(survivor, brand, action="granted", minutes_ago=30)
    grant(absorbed, brand, action="withdrawn", minutes_ago=20)
    Member.objects.filter(pk=absorbed.pk).update(status=Member.Status.MERGED, merged_into=survivor)
    services.rebuild_consent_state(member_ids=[survivor.pk, absorbed.pk])
    assert services.check_projection().ok
    stray = ConsentState.objects.get(member=survivor)
    ConsentState.objects.create(
        member_id=absorbed.pk, brand=brand, purpose=marketing_purpose, channel="sms", action="granted",
        occurred_at=stray.occurred_at, event=stray.event,
    )  # fmt: skip
    found = services.check_projection()
    assert found.count == 1 and found.differences[0].member_id == absorbed.pk
    assert found.differences[0].ledger is None


# --- The recorded verification: the command, the nightly task, the beat entry ----------------


def test_verify_consent_ledger_records_and_fails_on_a_hand_edited_state(alice, brand):
    code, result = verify()
    assert code == 0 and result["ok"] is True
    assert (result["projection_ok"], result["projection_differences"]) == (True, 0)
    clean = LedgerVerification.objects.get()
    assert (clean.ok, clean.projection_ok, clean.projection_differences) == (True, True, 0)
    assert clean.finished_at is not None

    state_of(alice).update(action="granted")
    code, result = verify()
    assert code == 1
    assert result["ok"] is True  # the chains are intact: it is the projection that lies
    assert (result["projection_ok"], result["projection_differences"]) == (False, 1)
    assert "action granted (ledger: withdrawn)" in result["projection_first_difference"]
    assert "consent state differs from the ledger in 1 row" in result["message"]
    assert f"member {alice.pk}, brand lotus" in result["message"]
    assert {"events", "chains", "checkpoint", "first_bad_event", "error", "seconds", "events_per_second"} <= set(result)
    last = LedgerVerification.objects.order_by("-pk").first()
    assert (last.ok, last.projection_ok, last.projection_differences) == (True, False, 1)
    assert last.projection_first_difference.startswith(f"member {alice.pk}, brand lotus, purpose marketing")


def test_verify_consent_ledger_without_json_names_the_row(alice, brand):
    state_of(alice).update(by_guardian=True)
    with pytest.raises(CommandError) as info:
        call_command("verify_consent_ledger", stdout=io.StringIO())
    assert info.value.returncode == 1
    assert "by_guardian True (ledger: False)" in str(info.value)
    assert "NOT intact" not in str(info.value)


def test_the_nightly_task_records_the_verification(alice, brand):
    assert tasks.verify_ledger() is True
    state_of(alice).update(action="granted")
    assert tasks.verify_ledger() is False
    runs = list(LedgerVerification.objects.order_by("pk").values_list("ok", "projection_ok", "projection_differences"))
    assert runs == [(True, True, 0), (True, False, 1)]


def test_the_nightly_verification_is_in_the_beat_schedule(db):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from cdp.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["consent-ledger-verify-nightly"]
    assert entry["task"] == "consent.tasks.verify_ledger" and entry["task"] in app.tasks
    # What `celery beat` does on start; it closes "old" connections, which here would be
    # the test's own.
    with mock.patch("django_celery_beat.schedulers.close_old_connections"):
        DatabaseScheduler(app=app, lazy=False)
    task = PeriodicTask.objects.get(name="consent-ledger-verify-nightly")
    assert (task.task, task.crontab.hour, task.crontab.minute) == ("consent.tasks.verify_ledger", "2", "30")

"""Where reads and writes go (cdp.db_router), with a stand-in for a replica's connection:
what goes to a replica, what never does, and what happens when it is down. The same
against a real streaming replica: tests/cdp/test_read_replicas.py."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError, router, transaction

from cdp import db_router
from cdp.db_router import primary_reads, read_alias, reads_from_replica, replica_reads
from members.models import Member


class StandIn:
    """A replica's connection as the router sees it: reachable or not."""

    def __init__(self) -> None:
        self.up = True
        self.connection: object | None = None
        self.attempts = 0

    def ensure_connection(self) -> None:
        self.attempts += 1
        if not self.up:
            raise OperationalError('connection to server at "127.0.0.1", port 5433 failed: Connection refused')
        self.connection = object()

    def is_usable(self) -> bool:
        return self.up

    def close(self) -> None:
        self.connection = None


@pytest.fixture
def standby(monkeypatch, settings):
    stand_in = StandIn()
    connections = db_router.connections

    class Handler:
        def __getitem__(self, alias: str):
            return stand_in if alias == "standby" else connections[alias]

    monkeypatch.setattr(db_router, "connections", Handler())
    settings.DATABASE_REPLICAS = ["standby"]
    settings.REPLICA_RETRY_SECONDS = 30
    return stand_in


def test_without_a_replica_every_read_goes_to_the_primary(settings):
    settings.DATABASE_REPLICAS = []
    with replica_reads() as alias:
        assert alias is None
        assert Member.objects.all().db == "default"
        assert read_alias() == "default"


def test_only_reads_that_opt_in_go_to_the_replica(standby):
    assert Member.objects.all().db == "default"
    with replica_reads() as alias:
        assert alias == "standby"
        assert Member.objects.all().db == "standby"
        assert read_alias() == "standby"  # raw SQL follows too
        with primary_reads():
            assert Member.objects.all().db == "default"
    assert Member.objects.all().db == "default"


def test_writes_go_to_the_primary_also_for_an_object_read_on_the_replica(standby):
    read_there = Member(pk=1)
    read_there._state.db = "standby"
    with replica_reads():
        assert router.db_for_write(Member) == "default"
        assert router.db_for_write(Member, instance=read_there) == "default"
    assert router.allow_migrate("standby", "members") is False
    assert router.allow_migrate("replica", "members") is False  # also while routing to it is off
    assert router.allow_migrate("default", "members") is True


@pytest.mark.django_db(transaction=True)
def test_a_read_inside_a_transaction_stays_on_the_primary(standby):
    with replica_reads():
        assert Member.objects.all().db == "standby"
        with transaction.atomic():  # it may need its own writes, or lock what it reads
            assert Member.objects.all().db == "default"
            assert read_alias() == "default"
    with transaction.atomic(), replica_reads() as alias:
        assert alias is None
        assert Member.objects.all().db == "default"


def test_a_replica_that_is_down_is_left_alone_and_the_primary_answers(standby, settings, caplog):
    standby.up = False
    with caplog.at_level(logging.WARNING, logger="cdp.db_router"), replica_reads() as alias:
        assert alias is None
        assert Member.objects.all().db == "default"
    assert "read replica standby unreachable" in caplog.text
    with replica_reads() as alias:
        assert alias is None
    assert standby.attempts == 1  # not tried again within REPLICA_RETRY_SECONDS

    standby.up = True
    db_router._down_until["standby"] = 0  # the retry window has passed
    with replica_reads() as alias:
        assert alias == "standby"


def test_a_page_whose_replica_fails_half_way_is_read_again_from_the_primary(standby, caplog):
    seen = []

    @reads_from_replica
    def page() -> str:
        seen.append(read_alias())
        if read_alias() == "standby":
            standby.up = False  # the replica goes away under the query
            raise OperationalError("server closed the connection unexpectedly")
        return "figures"

    with caplog.at_level(logging.WARNING, logger="cdp.db_router"):
        assert page() == "figures"
    assert seen == ["standby", "default"]
    assert "read replica standby failed" in caplog.text


def test_an_error_of_the_primary_is_not_blamed_on_the_replica(standby):
    @reads_from_replica
    def page() -> str:
        raise OperationalError("deadlock detected")

    with pytest.raises(OperationalError, match="deadlock"):
        page()
    with replica_reads() as alias:
        assert alias == "standby"  # still in use


def test_after_a_persons_write_their_replica_reads_wait_until_the_replica_has_replayed_it(standby, monkeypatch, rf):
    from django.contrib.auth.models import AnonymousUser, User
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    replica_at_lsn = {"standby": "0/10"}
    monkeypatch.setattr(db_router, "primary_lsn", lambda: "0/20")
    monkeypatch.setattr(db_router, "replayed", lambda alias, lsn: replica_at_lsn[alias] >= lsn)
    seen = []

    def view(request):
        with replica_reads() as alias:
            seen.append(alias)
        return "page"

    middleware = db_router.ReadYourWritesMiddleware(view)
    session = SessionStore()

    def request(method: str, user=None):
        made = getattr(rf, method)("/admin/segments/segment/")
        made.session, made.user = session, user or User(pk=1, username="officer")
        return middleware(made)

    request("get")
    assert seen == ["standby"]  # nothing written yet
    request("post")
    assert session[db_router.ReadYourWritesMiddleware.SESSION_KEY] == "0/20"
    request("get")
    assert seen[-1] is None  # the replica is behind that write: the primary answers
    replica_at_lsn["standby"] = "0/20"
    request("get")  # caught up: the replica again, and the mark is gone
    assert seen[-1] == "standby"
    assert db_router.ReadYourWritesMiddleware.SESSION_KEY not in session
    request("post", AnonymousUser())
    assert db_router.ReadYourWritesMiddleware.SESSION_KEY not in session  # only a signed-in person's


def test_read_your_writes_does_nothing_without_replicas(settings, rf):
    settings.DATABASE_REPLICAS = []
    made = rf.post("/")
    made.session = {}
    assert db_router.ReadYourWritesMiddleware(lambda request: "page")(made) == "page"
    assert made.session == {}


def _settings_with(code: str, **env: str) -> subprocess.CompletedProcess:
    """Import the real settings in a fresh process with ``env`` and run ``code`` on them (``s``)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"CDP_TESTING", "DJANGO_SETTINGS_MODULE"} and
             not k.startswith(("DATABASE_", "REPLICA_", "BUILD_REPLICA"))}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-c", f"import cdp.settings as s; {code}"],
        cwd=Path(__file__).resolve().parents[2], env={**clean, "DEBUG": "1", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_replicas_need_a_postgresql_primary():
    result = _settings_with("", DATABASE_URL="sqlite:///x.sqlite3", DATABASE_REPLICA_URLS="postgres://cdp@db2/cdp")
    assert result.returncode != 0
    assert "DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL" in result.stderr


def test_each_replica_url_is_an_alias_that_mirrors_the_test_database():
    result = _settings_with(
        "d = s.DATABASES; print(s.DATABASE_REPLICAS, d['replica_2']['PORT'], d['replica_2']['TEST'],"
        " d['replica']['OPTIONS'], d['replica']['CONN_MAX_AGE'], d['replica']['NAME'], d['replica_2']['NAME'])",
        DATABASE_URL="postgres://cdp@127.0.0.1:5432/cdp", CONN_MAX_AGE="90",
        DATABASE_REPLICA_URLS="postgres://cdp@10.0.0.1:5432/other, postgres://cdp@10.0.0.2:6432",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == "['replica', 'replica_2'] 6432 {'MIRROR': 'default'} {'connect_timeout': 2} 90 other cdp"
    )

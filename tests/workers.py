"""Start and stop a real ``celery worker`` process on the test database (PostgreSQL + Redis)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from django.db import connection

from cdp.celery import app

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


_started = itertools.count(1)


def start_worker(*, queues: Sequence[str] = (), **extra_env: str) -> subprocess.Popen:
    """A solo-pool worker (one process, so SIGKILL kills the task too), answering pings.
    ``queues``: only these (``-Q``); by default every queue of ``cdp.queues``. Each worker
    has a name of its own, so a second one is only ready when it answers itself."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "CDP_TESTING": "1",
        "DATABASE_URL": database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        **extra_env,
    }
    name = f"test-{os.getpid()}-{next(_started)}@localhost"
    command = [sys.executable, "-m", "celery", "-A", "cdp", "worker", "--pool=solo", "--loglevel=INFO",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", name]  # fmt: skip
    if queues:
        command += ["-Q", ",".join(queues)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"worker exited early:\n{proc.stdout.read()}")
        if app.control.ping(destination=[name], timeout=1.0):
            return proc
    stop_worker(proc)
    pytest.fail("worker did not answer a ping within 60 s")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

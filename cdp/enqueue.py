"""The one place where application code starts a Celery task.

Services name the task by its dotted path (``"privacy.tasks.erase_member_data"``, which is
also its registered name) instead of importing the task module: task modules import
services, so a service that imported its tasks would close a cycle.

Both functions write an outbox row in the caller's transaction (DESIGN.md ⚑ "Side effects
go through the outbox"; ``cdp/outbox.py``): the task is sent once that transaction
commits, and not at all if it rolls back. Outside a transaction the row commits at once
and is sent at once. If the broker is down the row waits and a relay sends it later; the
caller is never told, because its change has committed. Before the outbox, ``enqueue``
inside a transaction sent at once, before the commit; now it waits for the commit too.
"""

from __future__ import annotations

from typing import Any


def enqueue(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Start ``task(*args, **kwargs)`` once the caller's transaction commits, at once
    outside one (in-process when tasks are eager). ``countdown``: not before that many
    seconds from now. Arguments must be JSON: ids, not objects."""
    from . import outbox  # models are loaded by the time anything starts a task

    outbox.add(task, args, kwargs, countdown=countdown, on_commit=False)


def enqueue_on_commit(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """The same in production; the name says at the call site that nothing is sent before
    the change commits, so a worker never looks for a row a rolled-back transaction never
    wrote. In tests the task waits for the test's commit callbacks
    (``django_capture_on_commit_callbacks``) even when the code opened no transaction."""
    from . import outbox

    outbox.add(task, args, kwargs, countdown=countdown, on_commit=True)


def wake_on_commit(task: str, *args: Any) -> None:
    """Nudge a worker once the caller's transaction commits, for work whose durable record
    is a row the caller wrote in that transaction (an inbox: a platform event stored
    ``pending``). That row is the outbox row of the work: it commits or rolls back with
    the change, and a beat task finds what waits (DESIGN.md ⚑ "Side effects go through
    the outbox": sent after commit, retried until done). So the nudge itself needs no
    outbox row of its own, and costs a request one broker round trip instead of an
    outbox row and its two updates. A nudge lost with the broker delays the work until
    beat; it never raises. In-process (tasks eager) it runs the task, as the outbox does."""
    import uuid

    from django.db import transaction
    from django.utils.module_loading import import_string

    from . import broker

    target = import_string(task)  # a misspelt name fails here, in the caller's transaction

    def nudge() -> None:
        if broker.is_eager():
            target.delay(*args)
            return
        if not broker.breaker.allows():
            return
        try:
            broker.send(target, list(args), {}, task_id=f"wake-{uuid.uuid4()}", eta=None)
        except broker.SEND_ERRORS as error:
            broker.breaker.failed(error)
        else:
            broker.breaker.answered()

    transaction.on_commit(nudge)

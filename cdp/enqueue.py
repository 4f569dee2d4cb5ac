"""The one place where application code starts a Celery task.

Services name the task by its dotted path (``"privacy.tasks.erase_member_data"``, which is
also its registered name) instead of importing the task module: task modules import
services, so a service that imported its tasks would close a cycle. It also keeps every
"start a side effect" call in one seam, which the outbox (DESIGN.md ⚑ "Side effects go
through the outbox") will replace in one place.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string


def enqueue(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Send ``task`` to the broker now (run it in-process when tasks are eager)."""
    function = import_string(task)
    if countdown:
        function.apply_async(args, kwargs, countdown=countdown)
    else:
        function.delay(*args, **kwargs)


def enqueue_on_commit(task: str, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` once the current transaction commits (at once outside one), so a
    worker never looks for a row that a rolled-back transaction never wrote."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))

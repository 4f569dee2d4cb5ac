"""Which Celery queue each task goes to (``CELERY_TASK_ROUTES``), and the queues a worker
consumes (``CELERY_TASK_QUEUES``; docs/operations.md, "Queues and workers").

Bulk work (a million-row import, a segment build, the nightly reports) has queues of its
own, so that it never sits in front of what a person is waiting for: a withdrawal's
webhook, the outbox relay that sends it when the broker was away, a confirmation mail. A
worker started without ``-Q`` (``make worker``) consumes every queue below; production runs
one worker for the quick queues and others for the bulk ones.

Every registered task is routed here by name; tests/cdp/test_queues.py fails for a task
that is not, so none lands on a queue no worker consumes.
"""

from __future__ import annotations

from kombu import Queue

# The quick queues first: a worker consuming several takes them in turn (kombu rotates the
# order it polls them), so the order is documentation, not priority.
OUTBOX = "outbox"  # the relay: side effects the broker could not take at once
WEBHOOKS = "webhooks"  # consent changes pushed to the platforms, and their retries
MAIL = "mail"  # confirmation mails, receipts, request updates (rate-limited tasks)
DEFAULT = "default"  # short housekeeping: sweeps, checkpoints, erasure steps, platform pushes
IMPORTS = "imports"  # member files, one task per chunk (imports.chunks)
SEGMENTS = "segments"  # segment builds (one set-based statement each)
REPORTS = "reports"  # nightly passes over everything: metrics, dashboard, ledger check, files

QUEUES: tuple[str, ...] = (OUTBOX, WEBHOOKS, MAIL, DEFAULT, IMPORTS, SEGMENTS, REPORTS)
# Queues a person is waiting on: production gives them a worker that never runs bulk work.
QUICK: tuple[str, ...] = (OUTBOX, WEBHOOKS, MAIL, DEFAULT)
BULK: tuple[str, ...] = (IMPORTS, SEGMENTS, REPORTS)

TASK_QUEUES: dict[str, str] = {
    # cdp: the relay on its own queue, so a backlog of webhooks cannot delay the sends of
    # other side effects either.
    "cdp.tasks.relay_outbox": OUTBOX,
    "cdp.tasks.prune_outbox": DEFAULT,
    # webhooks: every step of a consent change's way to a receiver.
    "webhooks.tasks.publish_event": WEBHOOKS,
    "webhooks.tasks.publish_events": WEBHOOKS,
    "webhooks.tasks.deliver": WEBHOOKS,
    "webhooks.tasks.retry_due": WEBHOOKS,
    "webhooks.tasks.delete_consent_files": DEFAULT,
    "webhooks.tasks.write_consent_files": REPORTS,  # every feed's daily file set
    # mail
    "consent.tasks.send_opt_in_email": MAIL,
    "consent.tasks.send_opt_in_emails": MAIL,
    "consent.tasks.send_held_opt_in_mails": MAIL,
    "consent.tasks.send_consent_receipt": MAIL,
    "privacy.tasks.send_erasure_receipt": MAIL,
    "privacy.tasks.send_request_update": MAIL,
    # consent
    "consent.tasks.create_checkpoint": DEFAULT,
    "consent.tasks.forget_paper_scans": DEFAULT,  # an erasure step: scans of signed forms
    "consent.tasks.create_ledger_partitions": DEFAULT,  # next months' partitions, ahead of time
    "consent.tasks.verify_ledger": REPORTS,  # reads every event
    # privacy: an erasure has a deadline; it must not wait behind an import.
    "privacy.tasks.erase_member_data": DEFAULT,
    # members
    "members.tasks.refresh_member_metrics": REPORTS,
    # imports: the files on their queue; the sweeps, file deletions (erasure steps) and a
    # platform's pushes (an unbind withdraws consent) not behind them.
    "imports.tasks.run_import_job": IMPORTS,
    "imports.tasks.import_chunk": IMPORTS,
    "imports.tasks.mark_stalled_jobs": DEFAULT,
    "imports.tasks.delete_import_files": DEFAULT,
    "imports.tasks.delete_expired_import_files": DEFAULT,
    "imports.tasks.apply_platform_events": DEFAULT,
    "imports.tasks.apply_stalled_platform_events": DEFAULT,
    # segments: a stalled build is found even while builds queue up.
    "segments.tasks.run_build_task": SEGMENTS,
    "segments.tasks.scheduled_build": SEGMENTS,
    "segments.tasks.mark_stalled_builds": DEFAULT,
    # insights: a marketer's "refresh figures" is waited for; the nightly pass is not.
    "insights.tasks.refresh_figures": DEFAULT,
    "insights.tasks.refresh_dashboard": REPORTS,
}


def routes() -> dict[str, dict[str, str]]:
    """``CELERY_TASK_ROUTES``: each task by name to its queue."""
    return {name: {"queue": queue} for name, queue in TASK_QUEUES.items()}


def declared() -> tuple[Queue, ...]:
    """``CELERY_TASK_QUEUES``: what a worker without ``-Q`` consumes (all of them)."""
    return tuple(Queue(name, routing_key=name) for name in QUEUES)

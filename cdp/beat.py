"""What Celery beat runs and when (``CELERY_BEAT_SCHEDULE``). django-celery-beat keeps the
schedule in the database (segment refreshes are edited in the admin); these entries are
installed there when beat starts."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from .env import env_int


def beat_schedule(*, outbox_relay_interval: int) -> dict[str, dict[str, Any]]:
    return {
        "refresh-member-metrics-nightly": {
            "task": "members.tasks.refresh_member_metrics",
            # 03:30 local time, before marketers look at the day's segments.
            "schedule": crontab(hour=3, minute=30),
        },
        # After the metrics: the dashboard's figures and daily counts of every brand, and on
        # the first night of a month its lifecycle snapshot.
        "refresh-dashboard-nightly": {
            "task": "insights.tasks.refresh_dashboard",
            "schedule": crontab(hour=4, minute=15),
        },
        "consent-ledger-checkpoint": {
            "task": "consent.tasks.create_checkpoint",
            "schedule": env_int("CONSENT_CHECKPOINT_INTERVAL", 600),
        },
        # The whole ledger's chains and the consent state against the ledger, recorded for the
        # compliance report and the dashboard; at night, as it reads every event.
        "consent-ledger-verify-nightly": {
            "task": "consent.tasks.verify_ledger",
            "schedule": crontab(hour=2, minute=30),
        },
        # The ledger's monthly partitions, LEDGER_PARTITIONS_AHEAD months ahead (PostgreSQL).
        "consent-ledger-partitions-daily": {
            "task": "consent.tasks.create_ledger_partitions",
            "schedule": crontab(hour=1, minute=45),
        },
        "webhooks-retry-due": {"task": "webhooks.tasks.retry_due", "schedule": 60},
        # Confirmation mails held back by the one-a-day limit per person and brand.
        "consent-held-opt-in-mails": {"task": "consent.tasks.send_held_opt_in_mails", "schedule": 60 * 60},
        # Sends what the outbox could not send after commit (the broker was away). A run that
        # waited in the queue longer than the interval is dropped: the next one does its work.
        "outbox-relay": {
            "task": "cdp.tasks.relay_outbox",
            "schedule": outbox_relay_interval,
            "options": {"expire_seconds": outbox_relay_interval},  # django-celery-beat's name for "expires"
        },
        "outbox-prune": {"task": "cdp.tasks.prune_outbox", "schedule": 60 * 60},
        # Imports and segment builds whose worker died: failed with a reason, retried from the admin.
        "imports-mark-stalled": {
            "task": "imports.tasks.mark_stalled_jobs",
            "schedule": 60,
            "options": {"expire_seconds": 60},
        },
        # Platform pushes answered but not applied (their worker died): applied now.
        "platform-events-apply-stalled": {
            "task": "imports.tasks.apply_stalled_platform_events",
            "schedule": 60,
            "options": {"expire_seconds": 60},
        },
        "segments-mark-stalled": {
            "task": "segments.tasks.mark_stalled_builds",
            "schedule": 60,
            "options": {"expire_seconds": 60},
        },
        # Each consent file feed's daily file set, then files older than CONSENT_FILE_RETENTION_DAYS.
        "webhooks-write-consent-files": {
            "task": "webhooks.tasks.write_consent_files",
            "schedule": crontab(hour=1, minute=15),
        },
        # Uploaded member files older than IMPORT_FILE_RETENTION_DAYS (imports.retention).
        "imports-delete-expired-files": {
            "task": "imports.tasks.delete_expired_import_files",
            "schedule": crontab(hour=4, minute=15),
        },
    }

"""Send the outbox's waiting side effects to Celery: what beat's ``cdp.tasks.relay_outbox``
does every few seconds, for operators (after an outage, or where beat does not run)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cdp import outbox


class Command(BaseCommand):
    help = (
        "Send the outbox rows that wait (the broker was away when their change committed). "
        "Once by default; --loop keeps relaying every OUTBOX_RELAY_INTERVAL seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="one pass over the due rows (the default)")
        mode.add_argument("--loop", action="store_true", help="relay until interrupted")
        parser.add_argument("--now", action="store_true", help="also send rows still backing off from a failed attempt")
        parser.add_argument("--prune", action="store_true", help=f"also delete rows sent more than "
                            f"{settings.OUTBOX_KEEP_SENT_DAYS} days ago (OUTBOX_KEEP_SENT_DAYS)")  # fmt: skip

    def handle(self, *args: Any, loop: bool, now: bool, prune: bool, **options: Any) -> None:
        if prune:
            self.stdout.write(f"Pruned {outbox.prune_sent()} sent rows.")
        if not loop:
            relayed = self._relay(now=now)
            if relayed.broker_down:
                raise CommandError("The broker is unreachable: the rows wait and are tried again later.")
            return
        try:
            while True:
                self._relay(now=now)
                time.sleep(settings.OUTBOX_RELAY_INTERVAL)
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")

    def _relay(self, *, now: bool) -> outbox.Relayed:
        relayed = outbox.retry_now() if now else outbox.relay_due()
        backlog = outbox.backlog()
        oldest = "" if backlog.oldest_seconds is None else f", the oldest for {backlog.oldest_seconds:.0f} s"
        line = f"Sent {relayed.sent}; {backlog.waiting} waiting{oldest}."
        if relayed.broker_down:
            self.stderr.write(f"{line} The broker is unreachable.")
        elif relayed.sent or backlog.waiting:
            self.stdout.write(line)
        return relayed

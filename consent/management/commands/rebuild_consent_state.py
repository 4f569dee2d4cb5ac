"""Recompute ConsentState from the ledger (DESIGN.md ⚑: the state is a fold of the ledger),
or with ``--check`` compare every column of every state row with that fold and exit 1
naming the rows that differ, changing nothing."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from consent import services
from consent.services.projection import row_count


class Command(BaseCommand):
    help = "Rebuild consent state from the ledger, or with --check only report where they differ."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; exit 1 naming the rows whose state differs from the ledger",
        )
        parser.add_argument(
            "--limit", type=int, default=20, help="with --check, how many differing rows to name (default 20)"
        )

    def handle(self, *args, check: bool, limit: int, **options) -> None:
        started = time.monotonic()
        if check:
            found = services.check_projection(limit=max(limit, 0))
            seconds = time.monotonic() - started
            if not found.ok:
                for line in found.lines:
                    self.stderr.write(line)
                raise CommandError(
                    f"consent state differs from the ledger in {row_count(found.count)} ({len(found.lines)} named above); "
                    "run rebuild_consent_state without --check to refold it",
                    returncode=1,
                )
            self.stdout.write(self.style.SUCCESS(f"consent state equals the fold of the ledger ({seconds:.2f} s)"))
            return
        rows = services.rebuild_consent_state()
        self.stdout.write(
            self.style.SUCCESS(f"rebuilt {rows} consent state rows in {time.monotonic() - started:.2f} s")
        )

"""Recompute ConsentState from the ledger (DESIGN.md ⚑: the state is a fold of the ledger)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from consent import services


class Command(BaseCommand):
    help = "Rebuild consent state from the ledger, or with --check only report where they differ."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if state and ledger differ")

    def handle(self, *args, check: bool, **options) -> None:
        started = time.monotonic()
        if check:
            differences = services.state_differences()
            if differences:
                for line in differences:
                    self.stderr.write(line)
                raise CommandError(f"consent state differs from the ledger ({len(differences)} shown)", returncode=1)
            self.stdout.write(self.style.SUCCESS("consent state equals the fold of the ledger"))
            return
        rows = services.rebuild_consent_state()
        self.stdout.write(
            self.style.SUCCESS(f"rebuilt {rows} consent state rows in {time.monotonic() - started:.2f} s")
        )

"""Recompute every brand's dashboard figures now (what the nightly beat entry does), e.g.
after a deployment or a big import, so no one waits for them on a first view."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from cdp import audit
from insights import services


class Command(BaseCommand):
    help = "Recompute the dashboard figures of every brand and take this month's lifecycle snapshot if missing."

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        with audit.acting_as(audit.Actor(type="system", label="refresh_dashboard")):
            snapshot = services.refresh_dashboard()
        self.stdout.write(
            self.style.SUCCESS(
                f"Dashboard figures refreshed in {time.monotonic() - started:.1f} s; lifecycle snapshot {snapshot}."
            )
        )

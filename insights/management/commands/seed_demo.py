"""Load demo data: brands, stores, people across platforms, orders, consent and segments.

It lives in the insights app, the top of the dependency chain, because it seeds every app
below it (cdp ← members ← consent ← privacy | segments ← insights).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from consent.demo import privacy_center_hint, seed_consent
from members.demo import seed_demo
from members.models import Brand
from privacy.demo import seed_requests
from segments.demo import seed_segments


class Command(BaseCommand):
    help = "Create demo brands, stores, members (through identity resolution), orders, consent and segments."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--members", type=int, default=5000, help="people to create (default 5000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (the same seed, the same data)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when demo data already exists")

    def handle(self, *args, members: int, seed: int, if_empty: bool, **options) -> None:
        if members < 1:
            raise CommandError("--members must be at least 1")
        if Brand.objects.exists():
            if if_empty:
                self.stdout.write("Demo data already exists; nothing to do.")
                return
            raise CommandError("The database already has brands; seed_demo only fills an empty database.")
        started = time.monotonic()
        summary = seed_demo(members=members, seed=seed)
        consent = seed_consent(people=summary.pop("people"), seed=seed)
        segments = seed_segments(seed=seed)
        requests = seed_requests(seed=seed)
        seconds = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary['members']} members from {summary['records']} store records "
                f"({summary['merges']} merges) in {summary['stores']} stores of {summary['brands']} brands, "
                f"{summary['orders']} orders ({summary['guest_orders']} by guests), "
                f"{consent['events']} consent events in {seconds:.1f} s."
            )
        )
        self.stdout.write(f"  identities: {summary['identities']}")
        self.stdout.write(f"  lifecycle:  {summary['lifecycle']}")
        self.stdout.write(f"  consent:    {consent['by_purpose']}")
        self.stdout.write(
            f"  data-subject requests: {requests} (some overdue, see Privacy center → data-subject requests)"
        )
        for name, funnel in segments.items():
            steps = " → ".join(f"{count}" for count in funnel.values())
            self.stdout.write(f"  segment {name}: {steps} (matched → consented → under cap → reachable → final)")
        self.stdout.write(privacy_center_hint())

"""Demo data for the dashboard, after ``seed_demo``: a year of monthly lifecycle snapshots
(the data requests come from ``seed_demo``, through the queue's services) (``insights.demo``)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from insights.demo import seed_dashboard_history
from insights.models import LifecycleSnapshot
from members.models import Member


class Command(BaseCommand):
    help = "Add 12 monthly lifecycle snapshots to the demo data (run after seed_demo)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing when snapshots already exist")

    def handle(self, *args, if_empty: bool, **options) -> None:
        if LifecycleSnapshot.objects.exists():
            if if_empty:
                self.stdout.write("Dashboard history already exists; nothing to do.")
                return
            raise CommandError("Lifecycle snapshots already exist; this command only fills an empty history.")
        if not Member.objects.exists():
            raise CommandError("No members: run seed_demo first.")
        summary = seed_dashboard_history()
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {summary['snapshots']} lifecycle snapshots."
            )
        )

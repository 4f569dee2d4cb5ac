"""Create the staff roles (Marketer, Privacy officer, Administrator) and reset their
permissions to ``insights.roles``. ``migrate`` does the same; this says what it did."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from insights.roles import seed_roles


class Command(BaseCommand):
    help = "Create the staff role groups and set their permissions to the definition in insights/roles.py."

    def handle(self, *args: Any, **options: Any) -> None:
        for result in seed_roles(using=options["database"]):
            self.stdout.write(result.describe())

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default="default", help="Database to seed (default: default).")

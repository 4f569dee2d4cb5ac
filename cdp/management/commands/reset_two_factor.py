"""Remove a staff user's authenticator app (a lost or replaced phone): their next admin
login asks for the password only, and they can set up a new app at /admin/two-factor/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from cdp import audit


class Command(BaseCommand):
    help = "Turn off two-factor sign-in for USERNAME (their authenticator app was lost or replaced)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    @transaction.atomic
    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        removed, _ = TOTPDevice.objects.filter(user=user).delete()
        audit.record("staff.two_factor_reset", user, changes={"devices_removed": removed})
        self.stdout.write(f"{username}: {removed} authenticator device(s) removed")

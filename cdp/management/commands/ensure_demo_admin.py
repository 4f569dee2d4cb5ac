"""Create the demo superuser (admin/admin). Development only: refused unless DEBUG."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create or reset the demo superuser admin/admin (only with DEBUG on)."

    def handle(self, *args: Any, **options: Any) -> None:
        # A well-known password on a production site is an open door: DEBUG is the one
        # switch that says "this is a developer's machine".
        if not settings.DEBUG:
            raise CommandError("Refusing to create a user with a known password: DEBUG is off (production).")
        User = get_user_model()
        user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        # Reset everything `make demo` relies on, in case someone changed it in the admin.
        user.email = "admin@example.com"
        user.is_active = user.is_staff = user.is_superuser = True
        user.set_password("admin")
        user.save()
        self.stdout.write("Admin login: http://127.0.0.1:8000/admin/  user: admin  password: admin")

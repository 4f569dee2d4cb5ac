"""Create the demo superuser (admin/admin) and one demo staff user per role. Development
only: refused unless DEBUG."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

# username, password, role group (insights.roles), shown at the end of `make demo`.
DEMO_STAFF = [
    ("marketer", "marketer", "Marketer"),
    ("privacy", "privacy", "Privacy officer"),
    ("administrator", "administrator", "Administrator"),
]


class Command(BaseCommand):
    help = "Create or reset the demo superuser admin/admin and a demo user per staff role (only with DEBUG on)."

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
        for username, password, role in DEMO_STAFF:
            group = Group.objects.filter(name=role).first()
            if group is None:
                raise CommandError(f"The role {role!r} does not exist: run `manage.py migrate` (or seed_roles) first.")
            staff, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            staff.is_active = staff.is_staff = True
            staff.is_superuser = False
            staff.set_password(password)
            staff.save()
            staff.groups.set([group])
            staff.user_permissions.clear()  # the role alone says what the demo user may do
            # ⚑ Brand wall: the marketer and the privacy officer work for the first brand
            # only (cdp.admin_scope); the Administrator role sees every brand.
            brand_model = staff.staff_brands.model  # members.Brand, reached without importing upwards
            brands = list(brand_model.objects.order_by("name", "pk")[:1]) if role != "Administrator" else []
            staff.staff_brands.set(brands)
            where = f" (brand {brands[0].name})" if brands else " (every brand)"
            self.stdout.write(f"  {role}: user {username}  password {password}{where}")

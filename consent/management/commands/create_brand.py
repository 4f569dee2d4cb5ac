"""``manage.py create_brand --code C --name N --store code,name,platform[,city] …
[--staff username:Role …]``: a brand ready for its first import (``consent.onboarding``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cdp import audit
from consent.onboarding import OnboardingError, onboard_brand, parse_stores
from members.models import Brand


class Command(BaseCommand):
    help = (
        "Create a brand with its stores, the default purposes, the membership agreement and purpose notices in "
        "Simplified and Traditional Chinese, English and Russian (templates to review), and its staff."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--code", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--jurisdiction", choices=Brand.Jurisdiction.values, default=Brand.Jurisdiction.CN)
        parser.add_argument("--privacy-email", default="")
        parser.add_argument("--legal-name", default="")
        parser.add_argument("--store", action="append", default=[], metavar="CODE,NAME,PLATFORM[,CITY]")
        parser.add_argument("--staff", action="append", default=[], metavar="USERNAME:ROLE",
                            help="an existing staff user and a role: Marketer, Privacy officer or Administrator")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        staff = []
        for item in options["staff"]:
            username, _, role = item.partition(":")
            if not role:
                raise CommandError(f"--staff {item!r}: write USERNAME:ROLE, e.g. li.na:Marketer")
            staff.append((username.strip(), role.strip()))
        with audit.acting_as(audit.Actor(type="system", label="manage.py create_brand")):
            try:
                done = onboard_brand(
                    code=options["code"], name=options["name"], jurisdiction=options["jurisdiction"],
                    privacy_email=options["privacy_email"], legal_name=options["legal_name"],
                    stores=parse_stores("\n".join(options["store"])), staff=staff,
                )  # fmt: skip
            except OnboardingError as exc:
                raise CommandError(str(exc)[0].upper() + str(exc)[1:] + ".") from None
        self.stdout.write(
            f"Brand {done.brand.code} ({done.brand.name}): {len(done.stores)} store(s), "
            f"{len(done.purposes)} purposes, {len(done.notices)} notices in 4 languages, {len(done.staff)} staff."
        )
        self.stdout.write("Next: review and publish the notices, import a member file, issue an API key "
                          "(the brand's admin page lists what is left).")  # fmt: skip

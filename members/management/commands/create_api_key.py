"""``manage.py create_api_key --brand CODE [--store CODE] --scopes a,b [--name N] [--expires-days D]``

Prints the new key alone on the last line (for automation); it cannot be shown again."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from cdp import audit
from cdp.api_keys import ApiKeyError, issue_api_key
from cdp.models import ApiKey, ApiKeyScope
from members.models import Brand, Store


class Command(BaseCommand):
    help = "Issue an API key for a brand (optionally one store) and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--brand", required=True, help="Brand code.")
        parser.add_argument("--store", help="Store code: the key acts for this store only.")
        parser.add_argument("--scopes", required=True, help=f"Comma-separated: {','.join(ApiKeyScope.values)}")
        parser.add_argument("--name", default="", help="Who uses the key (shown in the admin).")
        parser.add_argument("--expires-days", type=int, help="The key stops working after this many days.")

    def handle(self, *args: Any, **options: Any) -> None:
        brand = Brand.objects.filter(code=options["brand"]).first()
        if brand is None:
            raise CommandError(f"No brand {options['brand']!r}.")
        store = None
        if options["store"]:
            store = Store.objects.filter(code=options["store"], brand=brand).first()
            if store is None:
                raise CommandError(f"Brand {brand.code!r} has no store {options['store']!r}.")
        expires = None
        if options["expires_days"] is not None:
            if options["expires_days"] <= 0:
                raise CommandError("--expires-days must be positive.")
            expires = timezone.now() + dt.timedelta(days=options["expires_days"])
        key = ApiKey(
            name=options["name"] or f"{brand.code} {store.code if store else 'all stores'} (command line)",
            brand=brand,
            store=store,
            scopes=options["scopes"].split(","),
            expires_at=expires,
        )
        with audit.acting_as(audit.Actor(type="system", label="create_api_key")):
            try:
                key, raw = issue_api_key(key)
            except ApiKeyError as exc:
                raise CommandError(str(exc)) from None
        self.stderr.write(f"Key {key.prefix}… for {brand.code}, scopes {', '.join(key.scopes)}. Store it now:")
        self.stdout.write(raw)

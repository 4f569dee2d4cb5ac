"""``manage.py connect_platform --store CODE [--adapter tmall|douyin|wechat|generic]
[--secret S] [--app-id ID]``: let a store's platform push membership events to
``/api/v1/platform-events/<store code>/`` (docs/platforms.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cdp import audit
from imports.platform_events.connections import ConnectionError_, connect_platform
from imports.platform_events.models import PlatformConnection
from members.models import Store


class Command(BaseCommand):
    help = "Connect a store's platform (Tmall, Douyin shop, WeChat member cards, or any other) for membership pushes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--store", required=True, help="the store's code")
        parser.add_argument("--adapter", choices=PlatformConnection.Adapter.values, default="",
                            help="default: the adapter of the store's platform (generic for others)")  # fmt: skip
        parser.add_argument("--secret", default="", help="the platform's app secret or token (generic: made here)")
        parser.add_argument("--app-id", default="", help="the platform's id of the brand's app, checked on each push")

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.select_related("brand").filter(code=options["store"]).first()
        if store is None:
            raise CommandError(f"No store with the code {options['store']!r}.")
        with audit.acting_as(audit.Actor(type="system", label="manage.py connect_platform")):
            try:
                done = connect_platform(
                    store=store, adapter=options["adapter"], secret=options["secret"], app_id=options["app_id"]
                )
            except ConnectionError_ as exc:
                raise CommandError(str(exc)[0].upper() + str(exc)[1:] + ".") from None
        connection = done.connection
        self.stdout.write(
            f"{'Connected' if done.created else 'Reconnected'} {store.code} ({connection.get_adapter_display()}): "
            f"pushes go to /api/v1/platform-events/{store.code}/; joining records "
            f"{connection.agreement_purpose.code!r} with {connection.agreement_notice.title!r} "
            f"v{connection.agreement_notice.version}."
        )
        if done.secret_made:
            self.stdout.write("Signing secret (shown once, give it to the platform):")
            self.stdout.write(done.secret)

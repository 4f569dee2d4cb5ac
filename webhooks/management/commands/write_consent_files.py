"""``manage.py write_consent_files [--feed ID]``: what the daily beat task does, for
operators (docs/api.md "Consent files")."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cdp import audit
from webhooks.feeds import services as feeds
from webhooks.models import ConsentFileFeed


class Command(BaseCommand):
    help = "Write the next consent file set of every active feed (or one), then delete expired files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--feed", type=int, help="only this feed (its id)")
        parser.add_argument("--no-retention", action="store_true", help="do not delete expired files")

    def handle(self, *args: Any, **options: Any) -> None:
        feed_id = options.get("feed")
        if feed_id is not None and not ConsentFileFeed.objects.filter(pk=feed_id, is_active=True).exists():
            raise CommandError(f"No active consent file feed #{feed_id}.")
        with audit.acting_as(audit.Actor(type="system", label="manage.py write_consent_files")):
            written = feeds.write_all(feed_id=feed_id)
            deleted = 0 if options["no_retention"] else feeds.delete_expired_files()
        for consent_file in written:
            self.stdout.write(
                f"feed #{consent_file.feed_id} file {consent_file.number}: {consent_file.events} events "
                f"({consent_file.after_event_id} < id <= {consent_file.up_to_event_id}) in {consent_file.directory}"
            )
        if deleted:
            self.stdout.write(f"deleted {deleted} expired file sets")

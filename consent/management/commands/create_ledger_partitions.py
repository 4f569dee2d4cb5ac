"""Create the consent ledger's monthly partitions ahead (PostgreSQL; the beat task does it
daily). ``--from 2024-01`` first covers older months, for a loader that brings events
recorded then. Exit status 1 when the DEFAULT partition holds events (docs/consent.md,
"Partitioned ledger")."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from consent import ledger_partitions


def _month(value: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise CommandError(f"--from {value!r}: expected YYYY-MM") from None


class Command(BaseCommand):
    help = "Create the consent ledger's monthly partitions ahead; exit 1 when the DEFAULT partition holds events."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ahead", type=int, default=None, help="months after this one (LEDGER_PARTITIONS_AHEAD)")
        parser.add_argument("--from", dest="start", type=_month, default=None, help="first month, YYYY-MM")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")

    def handle(self, *args, ahead: int | None, start: dt.date | None, json: bool, **options) -> None:
        if not ledger_partitions.is_partitioned():
            self.stdout.write("The consent ledger is not partitioned on this database; nothing to do.")
            return
        report = ledger_partitions.create_partitions(ahead=ahead, start=start)
        if json:
            self.stdout.write(_json(report))
        else:
            self.stdout.write(
                f"created {len(report.created)}, present {len(report.existing)}, busy {len(report.busy)}; "
                f"{report.default_rows} events in DEFAULT"
            )
        if report.default_rows or report.blocked:
            raise CommandError(
                f"{report.default_rows} consent events are in the DEFAULT partition "
                f"(months without a partition: {', '.join(report.blocked) or 'none'})",
                returncode=1,
            )


def _json(report: ledger_partitions.PartitionReport) -> str:
    return json.dumps(
        {
            "created": report.created,
            "existing": report.existing,
            "busy": report.busy,
            "blocked": report.blocked,
            "default_rows": report.default_rows,
        }
    )

"""Recompute every hash, link and checkpoint of the consent ledger.

Exit status 0 when intact; 1 naming the first broken event otherwise (DESIGN.md ⚑).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from consent.verification import record_verification


class Command(BaseCommand):
    help = "Verify the consent ledger's hash chains and checkpoints; exit 1 naming the first broken event."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=20000, help="events read per query (default 20000)")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
        parser.add_argument("--checkpoint", action="store_true", help="create a checkpoint first when intact")

    def handle(self, *args, batch: int, json: bool, checkpoint: bool, **options) -> None:
        result, seconds = record_verification(batch=batch, checkpoint=checkpoint)
        rate = result.events_checked / seconds if seconds > 0 else 0.0
        if json:
            self.stdout.write(
                _json(
                    {
                        "ok": result.ok,
                        "events": result.events_checked,
                        "chains": result.chains_checked,
                        "checkpoint": result.checkpoint_id,
                        "first_bad_event": result.first_bad_event_id,
                        "error": result.first_error,
                        "seconds": round(seconds, 3),
                        "events_per_second": round(rate),
                    }
                )
            )
        if not result.ok:
            raise CommandError(f"consent ledger is NOT intact: {result.first_error}", returncode=1)
        if not json:
            self.stdout.write(
                self.style.SUCCESS(
                    f"consent ledger intact: {result.events_checked} events in {result.chains_checked} chains, "
                    f"checkpoint {result.checkpoint_id or 'none'}, {seconds:.2f} s ({rate:,.0f} events/s)"
                )
            )


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)

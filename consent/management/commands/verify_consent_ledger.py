"""Recompute every hash, link and checkpoint of the consent ledger, then check that
ConsentState equals the fold of the ledger; the outcome is kept for the compliance report.

Exit status 0 when both are right; 1 naming the first broken event or the first state row
that differs otherwise (DESIGN.md ⚑).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from consent.services.projection import row_count
from consent.verification import record_verification


class Command(BaseCommand):
    help = (
        "Verify the consent ledger's hash chains and checkpoints and that consent state equals the ledger; "
        "exit 1 naming the first broken event or differing state row."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=20000, help="events read per query (default 20000)")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
        parser.add_argument("--checkpoint", action="store_true", help="create a checkpoint first when intact")

    def handle(self, *args, batch: int, json: bool, checkpoint: bool, **options) -> None:
        result, seconds = record_verification(batch=batch, checkpoint=checkpoint)
        rate = result.events_checked / seconds if seconds > 0 else 0.0
        projection = result.projection
        first_difference = projection.lines[0] if projection and projection.lines else ""
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
                        "projection_ok": result.projection_ok,
                        "projection_differences": projection.count if projection else None,
                        "projection_first_difference": first_difference,
                        "projection_seconds": round(result.projection_seconds, 3),
                    }
                )
            )
        problems = []
        if not result.ok:
            problems.append(f"consent ledger is NOT intact: {result.first_error}")
        if projection is not None and not projection.ok:
            problems.append(
                f"consent state differs from the ledger in {row_count(projection.count)}, first: {first_difference} "
                "(rebuild_consent_state --check names more; rebuild_consent_state refolds it)"
            )
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
        if not json:
            self.stdout.write(
                self.style.SUCCESS(
                    f"consent ledger intact: {result.events_checked} events in {result.chains_checked} chains, "
                    f"checkpoint {result.checkpoint_id or 'none'}, {seconds:.2f} s ({rate:,.0f} events/s); "
                    f"consent state equals the ledger ({result.projection_seconds:.2f} s)"
                )
            )


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)

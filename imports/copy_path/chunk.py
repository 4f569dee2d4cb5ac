"""One chunk of the COPY path, in one transaction: plan (``changes``), write
(``writing``), then the late rows row by row once the chunk before it committed."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from ..context import ImportContext
from ..report import ImportResult
from ..rows import ParsedRow
from .changes import plan_chunk
from .turns import SEQUENTIAL, Retry, Turn
from .writing import Rejected, write, write_row_by_row


def process_rows(ctx: ImportContext, rows: list[ParsedRow], turn: Turn = SEQUENTIAL) -> None:
    """Resolve and write one chunk in one transaction, retried when a concurrent writer
    got in between (the chunk rolled back whole, so reading again and replaying is safe)."""
    attempts = settings.RESOLUTION_MAX_ATTEMPTS
    for attempt in range(1, attempts + 1):
        local = ImportResult()
        rejected: Rejected = []
        try:
            with transaction.atomic():
                run_chunk(ctx, rows, local, rejected, turn)
        except (IntegrityError, Retry):
            if attempt == attempts:
                raise
            continue
        record_outcome(ctx, local, rejected)
        return


def run_chunk(
    ctx: ImportContext, rows: list[ParsedRow], result: ImportResult, rejected: Rejected, turn: Turn = SEQUENTIAL
) -> None:
    """Both phases, inside the caller's transaction."""
    plan = plan_chunk(ctx, rows, result, turn)
    turn.prepared(plan.touched, len(plan.late_rows))
    write(ctx, rows, plan, result, rejected)
    turn.before_commit()
    if plan.late_rows:
        write_row_by_row(ctx, rows, plan.late_rows, result, rejected)
        rejected.sort()  # file order, as one row after the other reports them


def record_outcome(ctx: ImportContext, local: ImportResult, rejected: Rejected) -> None:
    """A committed chunk's counts and refused rows into the import's."""
    ctx.result.add(local)
    for number, column, reason in rejected:
        ctx.errors.reject(number, column, reason)

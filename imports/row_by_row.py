"""The row-by-row path: each row through ``resolve_store_record`` and ``record_consent``.
Works on any database, streams (a chunk of rows at a time) and is the reference the COPY
path is checked against."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from consent import ledger
from consent.services import ConsentError, record_consent
from members.identities import RecordError
from members.services import resolve_store_record

from .context import ImportContext
from .report import ImportResult
from .rows import ParsedRow


def existing_external_ids(ctx: ImportContext, ids: list[str]) -> set[str]:
    return ledger.stored_external_ids(ctx.store.brand_id, ids)


def process_rows(
    ctx: ImportContext,
    rows: list[ParsedRow],
    *,
    result: ImportResult | None = None,
    reject: Callable[[int, str, str], None] | None = None,
) -> None:
    """Write ``rows`` (validated, in file order), one savepoint each: a row that fails
    leaves nothing behind and is reported; the others go in. ``result`` and ``reject``
    default to the import's own (the COPY path passes its chunk's)."""
    seen = existing_external_ids(ctx, [row.external_id(c) for row in rows for c in row.consents])
    result = result or ctx.result
    reject = reject or ctx.errors.reject
    with transaction.atomic():
        for row in rows:
            column = ""
            try:
                with transaction.atomic():
                    resolution = resolve_store_record(row.record)
                    events = 0
                    for choice in row.consents:
                        external_id = row.external_id(choice)
                        if external_id in seen:
                            continue
                        column = choice.column
                        recorded = record_consent(
                            member=resolution.member,
                            brand=ctx.store.brand,
                            purpose=ctx.purposes[choice.purpose.id],
                            channel=choice.channel,
                            action=choice.action,
                            source_type="import_job",
                            occurred_at=row.occurred_at,
                            source_ref=ctx.source_ref,
                            store=ctx.store,
                            notice=ctx.notice_for(choice.purpose.id, resolution.member.locale),
                            evidence=ctx.evidence(row),
                            external_id=external_id,
                            confirmation=choice.confirmation,
                        )
                        events += recorded.created
            except (RecordError, ConsentError) as exc:
                reject(row.number, column or exc.field, exc.message)
                continue
            for choice in row.consents:
                seen.add(row.external_id(choice))
            result.created += resolution.created
            result.updated += resolution.updated
            result.merged += len(resolution.merges)
            result.consent_events += events

"""The consent events of a chunk of the COPY path: appended to the ledger in one batch
(``consent.ledger_batch.append_many``: the chain and projection rules of a single
append), e-mail requests judged and mailed as ``record_consent`` does for each row on the
row-by-row path (``consent.validation.EmailOptIns``), and announced to webhook
subscribers once the chunk commits."""

from __future__ import annotations

from consent.ledger import canonical_json
from consent.ledger_batch import NewEvent, append_many
from consent.models import Action, Channel, ConsentEvent, SourceType
from consent.services.email_requests import email_opt_ins, queue_opt_in_mails
from consent.signals import consent_appended
from consent.validation import EmailOptIns, relays_email_grant

from .. import row_by_row
from ..context import ImportContext
from ..rows import ParsedRow
from .changes import Plan
from .planning import Person


def append_consent(ctx: ImportContext, rows: list[ParsedRow], plan: Plan) -> list[NewEvent]:
    """Append the consent events of the planned rows; returns them."""
    wanted = []
    for person in plan.persons:
        for index in person.rows:
            if rows[index].consents:
                wanted.append((index, person))
    if not wanted:
        return []
    wanted.sort(key=lambda item: item[0])  # file order; choices in column order
    # A person new in this chunk has no events yet: look up only the others' external ids.
    created = plan.created
    seen = row_by_row.existing_external_ids(
        ctx,
        [
            rows[index].external_id(choice)
            for index, person in wanted
            if id(person) not in created
            for choice in rows[index].consents
        ],
    )
    events = []
    to_mail = []
    brand_id, store_id, source_ref = ctx.store.brand_id, ctx.store.pk, ctx.source_ref[:200]
    recorded_at = plan.now
    notices: dict[tuple[int, str], int | None] = {}
    opt_ins = _email_opt_ins(ctx, rows, wanted, plan)
    for index, person in wanted:
        row = rows[index]
        evidence = None
        for choice in row.consents:
            external_id = row.external_id(choice)
            if external_id in seen:
                continue
            seen.add(external_id)
            key = (choice.purpose.id, person.locale)
            if key not in notices:
                notice = ctx.notice_for(*key)
                notices[key] = notice.pk if notice else None
            if choice.confirmation is not None:
                event_evidence = canonical_json({**ctx.evidence(row), "confirmation": choice.confirmation})
            else:
                if evidence is None:
                    evidence = ctx.evidence_text(row)
                event_evidence = evidence
            event = NewEvent(
                member_id=person.member_id,
                brand_id=brand_id,
                purpose_id=choice.purpose.id,
                channel=choice.channel,
                action=choice.action,
                occurred_at=row.occurred_at,
                recorded_at=recorded_at,
                source_type=SourceType.IMPORT_JOB.value,
                source_ref=source_ref,
                store_id=store_id,
                notice_id=notices[key],
                evidence=event_evidence,
                external_id=external_id,
            )
            if opt_ins is not None and choice.channel == Channel.EMAIL:
                where = {"member_id": person.member_id, "purpose_id": choice.purpose.id,
                         "occurred_at": row.occurred_at, "event": event}  # fmt: skip
                if _is_request(choice.action):
                    opt_in = opt_ins.request(**where)
                    if not opt_in.record:  # the person's confirmation or request of the day answers it
                        continue
                    if opt_in.mail:
                        to_mail.append(event)
                else:
                    opt_ins.recorded(action=choice.action, **where)
            events.append(event)
    append_many(events, fresh_members={person.member_id for person in plan.new_people})
    queue_opt_in_mails([event.pk for event in to_mail if event.pk is not None])
    return events


def _is_request(action: str) -> bool:
    return action == Action.REQUESTED and relays_email_grant(action, Channel.EMAIL, SourceType.IMPORT_JOB)


def _email_opt_ins(
    ctx: ImportContext, rows: list[ParsedRow], wanted: list[tuple[int, Person]], plan: Plan
) -> EmailOptIns | None:
    """The e-mail states and recent requests of the chunk's people with an e-mail request
    (new people have none), read once; None when the chunk has no e-mail request."""
    if not any(_is_request(c.action) for index, _ in wanted for c in rows[index].consents):
        return None
    created = plan.created
    ids = {
        person.member_id
        for index, person in wanted
        if id(person) not in created and any(c.channel == Channel.EMAIL for c in rows[index].consents)
    }
    if not ids:
        return EmailOptIns({}, {}, now=plan.now)
    return email_opt_ins(ctx.store.brand_id, ids, now=plan.now)


def announce(ctx: ImportContext, event_ids: list[int]) -> None:
    """``consent_appended`` for the chunk's events, sent inside the chunk's transaction:
    the webhook receivers write their outbox rows in it, so the events and their
    deliveries commit together, and neither does if the chunk rolls back (a retry, a dry
    run)."""
    consent_appended.send(sender=ConsentEvent, brand_id=ctx.store.brand_id, event_ids=event_ids,
                          source_type="import_job")  # fmt: skip

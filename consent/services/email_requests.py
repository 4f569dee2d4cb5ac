"""E-mail grants passed on by stores, the API, imports and staff: reading what
``consent.validation.EmailOptIns`` judges them by, and queueing the confirmation mail
(``record_consent``, ``record_consents`` and the import's COPY path share these)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.conf import settings
from django.db.models import CharField, Exists, Max, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from cdp.enqueue import enqueue_on_commit
from members.models import Member

from .. import ledger
from ..models import Action, Channel, ConsentEvent, ConsentState, DataUsage
from ..validation import OPT_IN_MAIL_INTERVAL, RELAYED_SOURCES, EmailOptIns, EmailState, OptIn


def email_opt_ins(brand_id: int, member_ids: Collection[int], *, now: dt.datetime) -> EmailOptIns:
    """``EmailOptIns`` for these people and the brand: their e-mail states and their
    e-mail requests of the last ``OPT_IN_MAIL_INTERVAL``, in two queries. Callers hold the
    people's rows locked (or created them), so nobody else changes either meanwhile."""
    states = {
        (member_id, purpose_id): EmailState(action, occurred_at, recorded_at, event_id)
        for member_id, purpose_id, action, occurred_at, recorded_at, event_id in ConsentState.objects.filter(
            member_id__in=member_ids, brand_id=brand_id, channel=Channel.EMAIL
        ).values_list("member_id", "purpose_id", "action", "occurred_at", "event__recorded_at", "event_id")
    }
    last_requests = dict(
        ConsentEvent.objects.filter(
            member_id__in=member_ids,
            brand_id=brand_id,
            channel=Channel.EMAIL,
            action=Action.REQUESTED,
            recorded_at__gte=now - OPT_IN_MAIL_INTERVAL,
        )
        .order_by()
        .values("member_id")
        .annotate(last=Max("recorded_at"))
        .values_list("member_id", "last")
    )
    return EmailOptIns(states, last_requests, now=now)


# A confirmation mail sent is a use of the person's e-mail address: a DataUsage row (their
# privacy center lists it), which also tells what was mailed, and when.
OPT_IN_MAIL_CONTEXT = "opt_in_mail"


def opt_in_mailed(event: ConsentEvent) -> DataUsage:
    """Note that ``event``'s confirmation mail went out."""
    return DataUsage.objects.create(
        member_id=event.member_id, brand_id=event.brand_id, purpose_id=event.purpose_id, channel=Channel.EMAIL,
        context_type=OPT_IN_MAIL_CONTEXT, context_ref=str(event.pk),
    )  # fmt: skip


def may_mail_opt_in(event: ConsentEvent, member_id: int, *, now: dt.datetime) -> bool:
    """Whether ``event``'s confirmation mail may go now: not mailed yet, and no other
    confirmation mail to the person from the brand within ``OPT_IN_MAIL_INTERVAL`` (a
    request held back by that limit goes out later, ``held_opt_in_requests``)."""
    mails = DataUsage.objects.filter(member_id=member_id, brand_id=event.brand_id, context_type=OPT_IN_MAIL_CONTEXT)
    if mails.filter(context_ref=str(event.pk)).exists():
        return False
    if event.source_type not in RELAYED_SOURCES:
        return True  # the person asked, in the privacy center: no limit
    return not mails.filter(occurred_at__gt=now - OPT_IN_MAIL_INTERVAL).exists()


def held_opt_in_requests(*, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Open e-mail requests whose mail never went out because the person had been mailed
    by the brand within ``OPT_IN_MAIL_INTERVAL``, once that interval is over: the oldest
    per person and brand (one mail a day each), at most ``limit``. Requests older than
    their link's lifetime are left: the link would be expired on arrival."""
    mails = DataUsage.objects.filter(
        member_id=OuterRef("member_id"), brand_id=OuterRef("brand_id"), context_type=OPT_IN_MAIL_CONTEXT
    )
    waiting = (
        ConsentState.objects.filter(
            channel=Channel.EMAIL,
            action=Action.REQUESTED,
            event__source_type__in=RELAYED_SOURCES,
            event__recorded_at__gt=now - dt.timedelta(days=settings.DOUBLE_OPT_IN_MAX_AGE_DAYS),
            event__recorded_at__lte=now - OPT_IN_MAIL_INTERVAL,  # a request of the day is still on its way
        )
        .exclude(Exists(mails.filter(context_ref=Cast(OuterRef("event_id"), CharField()))))
        .exclude(Exists(mails.filter(occurred_at__gt=now - OPT_IN_MAIL_INTERVAL)))
        .order_by("member_id", "brand_id", "event__recorded_at")
        .values_list("member_id", "brand_id", "event_id")
    )
    first: dict[tuple[int, int], int] = {}
    for member_id, brand_id, event_id in waiting.iterator():
        first.setdefault((member_id, brand_id), event_id)
        if len(first) >= limit:
            break
    return list(first.values())


def queue_opt_in_mail(event_id: int) -> None:
    """The confirmation mail of a ``requested`` event, sent once the transaction commits
    (``consent.tasks.send_opt_in_email``, rate-limited)."""
    enqueue_on_commit("consent.tasks.send_opt_in_email", event_id)


# Mails per queued task when an import asks for many: one outbox row and broker message
# per batch instead of per mail (a 200,000-row file asks for tens of thousands); the
# worker queues each mail (rate-limited) from it.
OPT_IN_MAIL_BATCH = 500


def queue_opt_in_mails(event_ids: list[int]) -> None:
    """The confirmation mails of many ``requested`` events (an import's chunk)."""
    for start in range(0, len(event_ids), OPT_IN_MAIL_BATCH):
        enqueue_on_commit("consent.tasks.send_opt_in_emails", event_ids[start : start + OPT_IN_MAIL_BATCH])


def judge_relayed_request(event: ConsentEvent, member: Member) -> OptIn:
    """Whether to append ``event``, a relayed e-mail request, and mail its link; if not,
    ``standing`` is the stored event that answers it (the same external id, the person's
    confirmation, their request of the day). Holds the person's row: two sources sending
    the same grant at once take turns, and the second finds the first's request."""
    Member.objects.select_for_update().filter(pk=member.pk).first()
    if event.external_id:
        existing = ledger.stored_events(event.brand_id, [event.external_id]).get(event.external_id)
        if existing is not None:
            return OptIn(record=False, standing=existing)
    opt_in = email_opt_ins(event.brand_id, [member.pk], now=timezone.now()).request(
        member_id=member.pk, purpose_id=event.purpose_id, occurred_at=event.occurred_at, event=None
    )
    if not opt_in.record:
        return OptIn(record=False, standing=ConsentEvent.objects.get(pk=opt_in.standing))
    return opt_in

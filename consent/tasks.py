"""Celery entry points of the consent app: thin wrappers that load by id and call the
mail builders or services.

Tasks are acknowledged late and may run twice (settings: ``CELERY_TASK_ACKS_LATE``). For
the mails below a second run sends a second copy of the same mail, which harms nobody:
a second confirmation link confirms the same request, a second receipt repeats the first.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from cdp import audit
from cdp.enqueue import enqueue
from members.queries import canonical_member

from . import ledger, ledger_partitions, mail, receipts, scans, verification
from .models import Action, Channel, ConsentState
from .services import email_requests

# SMTPException is an OSError: refused connections and temporary SMTP failures retry.
MAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 30, "retry_jitter": True, "max_retries": 6}
# Confirmation mails per second and worker process. A member file with 100,000 e-mail
# grants queues 100,000 of them in minutes; the mail server and the receiving providers
# (which throttle and mark as spam what arrives in bursts) get them at this pace instead.
# Celery keeps the token bucket per worker: N workers send N times this.
OPT_IN_MAIL_RATE = "10/s"


@shared_task(name="consent.tasks.send_opt_in_email", rate_limit=OPT_IN_MAIL_RATE, **MAIL_RETRY)
def send_opt_in_email(event_id: int) -> bool:
    """Mail the confirmation link of a ``requested`` event, unless the request was
    withdrawn or replaced before the worker got to it."""
    event = receipts.load_event(event_id)
    if event is None or event.action != Action.REQUESTED:
        return False
    member = canonical_member(event.member)
    still_open = ConsentState.objects.filter(
        member_id=member.pk, brand_id=event.brand_id, purpose_id=event.purpose_id, channel=Channel.EMAIL, event=event
    ).exists()
    if not still_open or not email_requests.may_mail_opt_in(event, member.pk, now=timezone.now()):
        return False  # a request held back by the daily limit goes later (send_held_opt_in_mails)
    message = mail.opt_in_message(event)
    if message is None:
        return False
    message.send()
    email_requests.opt_in_mailed(event)
    return True


@shared_task(name="consent.tasks.send_opt_in_emails")
def send_opt_in_emails(event_ids: list[int]) -> int:
    """A batch an import queued (``email_requests.queue_opt_in_mails``): one rate-limited
    ``send_opt_in_email`` per event, each through the outbox."""
    for event_id in event_ids:
        enqueue("consent.tasks.send_opt_in_email", event_id)
    return len(event_ids)


@shared_task(name="consent.tasks.send_held_opt_in_mails")
def send_held_opt_in_mails() -> int:
    """Beat, hourly: the confirmation mails the one-a-day limit held back, now due."""
    held = email_requests.held_opt_in_requests(now=timezone.now())
    for event_id in held:
        enqueue("consent.tasks.send_opt_in_email", event_id)
    return len(held)


@shared_task(name="consent.tasks.send_consent_receipt", **MAIL_RETRY)
def send_consent_receipt(event_id: int) -> bool:
    """Mail the person the receipt of one of their own consent events."""
    event = receipts.load_event(event_id)
    if event is None or not mail.wants_receipt(event):
        return False
    message = mail.receipt_message(event)
    if message is None:
        return False
    message.send()
    return True


@shared_task(name="consent.tasks.create_checkpoint")
def create_checkpoint() -> int:
    """Fix every chain head (scheduled in ``CELERY_BEAT_SCHEDULE``); returns its id."""
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        return ledger.create_checkpoint().pk


@shared_task(name="consent.tasks.verify_ledger")
def verify_ledger() -> bool:
    """Verify the whole ledger and check the projection against it (nightly, in
    ``CELERY_BEAT_SCHEDULE``), keeping the outcome as a ``LedgerVerification`` row for
    the compliance report and the dashboard. Returns whether both were right. Running
    twice only records a second verification."""
    with audit.acting_as(audit.Actor(type="system", label="celery")):
        result, _seconds = verification.record_verification()
    return result.all_ok


@shared_task(name="consent.tasks.create_ledger_partitions")
def create_ledger_partitions() -> dict[str, int]:
    """Beat, daily: the ledger's monthly partitions ``LEDGER_PARTITIONS_AHEAD`` months ahead
    (PostgreSQL; nothing elsewhere). Running twice creates nothing twice; a month whose
    partition the busy ledger kept from attaching is tried again the next day."""
    report = ledger_partitions.create_partitions()
    return {
        "created": len(report.created),
        "busy": len(report.busy),
        "blocked": len(report.blocked),
        "default_rows": report.default_rows,
    }


@shared_task(name="consent.tasks.forget_paper_scans", autoretry_for=(OSError,), retry_backoff=30, max_retries=6)
def forget_paper_scans(paths: list[str]) -> int:
    """An erasure's step: delete the scans of the person's signed paper forms (the ledger
    keeps their SHA-256). Run twice, the second run finds nothing to delete."""
    return scans.forget_scans(paths)

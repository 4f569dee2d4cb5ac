"""Celery entry points of the consent app: thin wrappers that load by id and call the
mail builders or services.

Tasks are acknowledged late and may run twice (settings: ``CELERY_TASK_ACKS_LATE``). For
the mails below a second run sends a second copy of the same mail, which harms nobody:
a second confirmation link confirms the same request, a second receipt repeats the first.
"""

from __future__ import annotations

from celery import shared_task

from cdp import audit
from members.queries import canonical_member

from . import ledger, mail, receipts
from .models import Action, Channel, ConsentState

# SMTPException is an OSError: refused connections and temporary SMTP failures retry.
_MAIL_RETRY = {"autoretry_for": (OSError,), "retry_backoff": 30, "retry_jitter": True, "max_retries": 6}


@shared_task(name="consent.tasks.send_opt_in_email", **_MAIL_RETRY)
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
    if not still_open:
        return False
    message = mail.opt_in_message(event)
    if message is None:
        return False
    message.send()
    return True


@shared_task(name="consent.tasks.send_consent_receipt", **_MAIL_RETRY)
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


# --- Privacy center ----------------------------------------------------------------------


@shared_task(name="consent.tasks.erase_member_data", autoretry_for=(OSError,), retry_backoff=30, max_retries=6)
def erase_member_data(request_id: int) -> bool:
    """Carry out a deletion request; a second run finds it done and does nothing."""
    from . import rights

    with audit.acting_as(audit.Actor(type="system", label="privacy-erasure")):
        return rights.carry_out_deletion(request_id).done_now


@shared_task(name="consent.tasks.send_erasure_receipt", **_MAIL_RETRY)
def send_erasure_receipt(request_id: int, address: str, language: str) -> bool:
    """The last mail we send the person: what was erased and what is kept as proof. The
    address travels in the task because the member row no longer has it."""
    from .privacy import notify

    return notify.send_erasure_receipt(request_id, address, language)


@shared_task(name="consent.tasks.send_request_update", **_MAIL_RETRY)
def send_request_update(request_id: int, event: str) -> bool:
    """Tell the person their request was completed, extended or refused (and why)."""
    from .privacy import notify

    return notify.send_request_update(request_id, event)


@shared_task(name="consent.tasks.run_import_job", acks_late=True, reject_on_worker_lost=True)
def run_import_job(job_id: int) -> dict[str, int | float] | None:
    """Import a big uploaded member file. Redelivered after a worker died, it claims the
    stale job and starts the file again; the import is idempotent, so nothing doubles."""
    from .importing import jobs

    result = jobs.run_job(job_id)
    return result.as_json() if result else None

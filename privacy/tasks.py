"""Celery entry points of the privacy center: thin wrappers that load by id and call the
rights and notification services. Tasks are acknowledged late and may run twice; each
one finds finished work done (see ``consent.tasks``)."""

from __future__ import annotations

from celery import shared_task

from cdp import audit
from consent.tasks import MAIL_RETRY

from . import notify, rights


@shared_task(name="privacy.tasks.erase_member_data", autoretry_for=(OSError,), retry_backoff=30, max_retries=6)
def erase_member_data(request_id: int) -> bool:
    """Carry out a deletion request; a second run finds it done and does nothing."""
    with audit.acting_as(audit.Actor(type="system", label="privacy-erasure")):
        return rights.carry_out_deletion(request_id).done_now


@shared_task(name="privacy.tasks.send_erasure_receipt", **MAIL_RETRY)
def send_erasure_receipt(request_id: int, address: str, language: str) -> bool:
    """The last mail we send the person: what was erased and what is kept as proof. The
    address travels in the task because the member row no longer has it."""
    return notify.send_erasure_receipt(request_id, address, language)


@shared_task(name="privacy.tasks.send_request_update", **MAIL_RETRY)
def send_request_update(request_id: int, event: str) -> bool:
    """Tell the person their request was completed, extended or refused (and why)."""
    return notify.send_request_update(request_id, event)

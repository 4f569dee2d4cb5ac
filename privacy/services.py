"""The privacy officer's work on data-subject requests: assign, complete, extend, refuse.

Each verb is one transaction that locks the request, checks it may still be acted on,
changes it, and writes an audit row; the mail to the person goes after commit. Creating
requests (privacy center) and carrying out deletions and withdrawals live in
``privacy.rights``; a deletion is completed by the erasure itself, never by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp import audit
from cdp.enqueue import enqueue_on_commit

from . import deadlines
from .models import DataSubjectRequest

MAX_REASON = 4000
Kind, Status = DataSubjectRequest.Kind, DataSubjectRequest.Status


class QueueError(ValueError):
    """An action the request does not allow now; the message says why, for the officer."""


def _locked(request_id: int) -> DataSubjectRequest:
    request = DataSubjectRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise QueueError(_("This request does not exist."))
    return request


def _require_open(request: DataSubjectRequest) -> None:
    if not request.is_open:
        raise QueueError(
            _("Request #%(id)s is already %(status)s: it cannot be acted on again.")
            % {"id": request.pk, "status": request.get_status_display().lower()}
        )


def _text(text: str, *, required: str | None = None) -> str:
    cleaned = (text or "").strip()
    if not cleaned and required:
        raise QueueError(required)
    if len(cleaned) > MAX_REASON:
        raise QueueError(_("Keep the text under 4,000 characters."))
    return cleaned


def _notify(request: DataSubjectRequest, event: str) -> None:
    enqueue_on_commit("privacy.tasks.send_request_update", request.pk, event)


@transaction.atomic
def assign_request(request_id: int, *, assignee: Any) -> DataSubjectRequest:
    """Give the request to a staff member; a request still "received" is now "in progress"."""
    if assignee is None or not assignee.is_active or not assignee.is_staff:
        raise QueueError(_("Requests can only be assigned to active staff members."))
    request = _locked(request_id)
    _require_open(request)
    before = request.assignee_id
    request.assignee = assignee
    fields = ["assignee"]
    if request.status == Status.RECEIVED:
        request.status = Status.IN_PROGRESS
        fields.append("status")
    request.save(update_fields=fields)
    audit.record(
        "privacy.request_assigned",
        request,
        changes={"assignee": [before, assignee.pk], "status": request.status},
    )
    return request


@transaction.atomic
def complete_request(request_id: int, *, note: str = "") -> DataSubjectRequest:
    """A person answered by hand: the correction was made, the copy sent. ``note`` (optional)
    is shown to the person. Deletions complete through the erasure, withdrawals at once."""
    request = _locked(request_id)
    _require_open(request)
    if request.kind not in (Kind.ACCESS, Kind.CORRECTION):
        raise QueueError(
            _("A %(kind)s request is completed by the erasure itself, not by hand.")
            % {"kind": request.get_kind_display().lower()}
        )
    note = _text(note)
    request.status = Status.COMPLETED
    request.completed_at = timezone.now()
    request.response = note
    request.save(update_fields=["status", "completed_at", "response"])
    audit.record("privacy.request_completed", request, changes={"note": bool(note)})
    _notify(request, "completed")
    return request


@transaction.atomic
def extend_request(request_id: int, *, reason: str) -> DataSubjectRequest:
    """Move the deadline once, by the rule of the request's jurisdiction, before it passes;
    the reason is shown to the person, who is also told by e-mail."""
    reason = _text(reason, required=_("Give the reason for the extension: the person will read it."))
    request = _locked(request_id)
    _require_open(request)
    rule = deadlines.rule_for(request.jurisdiction, request.kind)
    if request.extended_at is not None:
        raise QueueError(_("Request #%(id)s was extended once already.") % {"id": request.pk})
    if request.due_at < timezone.now():
        raise QueueError(
            _("Request #%(id)s is overdue: an extension must be announced before the deadline passes.")
            % {"id": request.pk}
        )
    new_due = deadlines.extended_due_at(
        request.jurisdiction, received_at=request.received_at, due=request.due_at, kind=request.kind
    )
    if new_due is None:
        raise QueueError(
            _("Requests under %(law)s cannot be extended: answer or refuse with a reason.") % {"law": rule.law}
        )
    request.original_due_at = request.due_at
    request.due_at = new_due
    request.extended_at = timezone.now()
    request.extension_reason = reason
    request.save(update_fields=["original_due_at", "due_at", "extended_at", "extension_reason"])
    audit.record(
        "privacy.request_extended",
        request,
        changes={"due_at": [request.original_due_at.isoformat(), new_due.isoformat()], "reason": reason},
    )
    _notify(request, "extended")
    return request


@transaction.atomic
def refuse_request(request_id: int, *, reason: str) -> DataSubjectRequest:
    """Refuse with the reason the law asks for (PIPL Art. 50, GDPR Art. 12(4), 152-FZ
    Art. 14(6)); the person sees it and is told by e-mail. A refused deletion is not erased."""
    reason = _text(reason, required=_("Give the reason for the refusal: the person will read it."))
    request = _locked(request_id)
    _require_open(request)
    request.status = Status.REJECTED
    request.completed_at = timezone.now()
    request.response = reason
    request.save(update_fields=["status", "completed_at", "response"])
    audit.record("privacy.request_refused", request, changes={"reason": reason})
    _notify(request, "refused")
    return request


@transaction.atomic
def retry_erasure(request_id: int) -> DataSubjectRequest:
    """Queue the erasure of an open deletion request again (its task gave up, or the
    worker was lost); the erasure completes the request. Safe to repeat: the task does
    nothing more once the request is completed."""
    request = _locked(request_id)
    _require_open(request)
    if request.kind != Kind.DELETION:
        raise QueueError(_("Only deletion requests are carried out by the erasure."))
    audit.record("privacy.erasure_requeued", request)

    enqueue_on_commit("privacy.tasks.erase_member_data", request_id)
    return request


def staff_users() -> Any:
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")

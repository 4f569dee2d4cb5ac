"""Signal receivers of the consent app, connected by ``ConsentConfig.ready``: consent state
stays right when identity resolution merges or splits people, and a person's own consent
changes are followed by a receipt mail."""

from __future__ import annotations

from typing import Any

from cdp.enqueue import enqueue, enqueue_on_commit
from cdp.small_tables import analyze_when_changed
from members import signals as member_signals

from . import mail, scans, services, signals
from .evidence import person
from .models import ConsentEvent, Notice, Purpose, SourceType

RECEIPTS_UID = "consent.mail.receipts"


def member_merged(sender: Any, event: Any, **kwargs: Any) -> None:
    services.rebuild_consent_state(member_ids=[event.survivor_id, event.absorbed_id])


def member_unmerged(sender: Any, event: Any, **kwargs: Any) -> None:
    services.rebuild_consent_state(member_ids=[event.survivor_id, event.absorbed_id])


def member_erased(sender: Any, member_id: int, **kwargs: Any) -> None:
    """Inside the erasure's transaction: the scans of the person's signed paper forms are
    deleted after commit (slow I/O, retried); the ledger keeps their SHA-256 as the proof
    (DESIGN.md ⚑ deletion: no file with the person's data remains)."""
    evidence = ConsentEvent.objects.filter(member_id__in=person(member_id), source_type=SourceType.PAPER_FORM)
    paths = sorted({scan["file"] for e in evidence.values_list("evidence", flat=True) if (scan := scans.scan_of(e))})
    if paths:
        enqueue_on_commit("consent.tasks.forget_paper_scans", paths)


def consent_changed(sender: Any, event: ConsentEvent, **kwargs: Any) -> None:
    """Queue a receipt for person-initiated events. Runs for every event (imports too), so
    it decides on fields already in memory and touches no database."""
    if mail.wants_receipt(event):
        enqueue("consent.tasks.send_consent_receipt", event.pk)


def connect_receipts() -> None:
    """The dispatch uid makes a second call harmless (the demo seed disconnects receipts
    while it invents people and connects them again)."""
    signals.consent_changed.connect(consent_changed, dispatch_uid=RECEIPTS_UID)


def connect() -> None:
    member_signals.member_merged.connect(member_merged, dispatch_uid="consent.member_merged")
    member_signals.member_unmerged.connect(member_unmerged, dispatch_uid="consent.member_unmerged")
    member_signals.member_erased.connect(member_erased, dispatch_uid="consent.forget_paper_scans")
    connect_receipts()
    # Small tables that ledger, state and segment queries join to (cdp.small_tables).
    analyze_when_changed(Purpose, Notice)

"""Consent a person gave on paper (a form signed at a store counter, a letter), typed in
by a privacy officer with the scan of the signed form as evidence: ``record_paper_consent``.

The choices go through ``record_consents`` like every other source (source "paper form"),
a person named by phone through identity resolution like any store record, and the scan's
SHA-256 into each event's evidence, so the ledger's hash chain covers the file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cdp import audit
from members.identities import RecordError, StoreRecord
from members.models import Brand, Identity, IdentityKind, Member, Store, StoreMembership
from members.queries import canonical_member
from members.services import resolve_store_record

from .. import scans
from ..evidence import person
from ..models import Action, Notice, Purpose, SourceType
from .recording import BatchConsentError, ConsentInput, Recorded, record_consents

MAX_REFERENCE = 100


class PaperConsentError(ValueError):
    """The form cannot be recorded; ``field`` names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PaperChoice:
    """One box on the form: this purpose (and channel) granted or withdrawn."""

    purpose: Purpose
    channel: str
    action: str


@dataclass
class PaperConsent:
    member: Member
    recorded: list[Recorded]
    scan_path: str
    new_member: bool  # identity resolution found nobody: the form made them a member

    @property
    def created(self) -> int:
        return sum(1 for r in self.recorded if r.created)


def paper_moment(day: dt.date, at: dt.time | None, action: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """When a choice on a form signed on ``day`` counts from. With the time written on the
    form, then; without it, a grant from the start of that day and a withdrawal from its
    end (never later than now), so an unclear order against a choice the person made
    elsewhere that day never favours contacting them."""
    now = now or timezone.now()
    if at is not None:
        return timezone.make_aware(dt.datetime.combine(day, at))
    if action == Action.WITHDRAWN:
        return min(timezone.make_aware(dt.datetime.combine(day, dt.time.max)), now)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def external_id(scan: scans.Scan, choice: PaperChoice) -> str:
    """One form typed in twice records nothing new; a corrected box (another action) does."""
    return f"paper:{scan.sha256}:{choice.purpose.pk}:{choice.channel or '-'}:{choice.action}"


def record_paper_consent(
    *,
    brand: Brand,
    store: Store,
    choices: list[PaperChoice],
    signed_on: dt.date,
    signed_at: dt.time | None,
    notice: Notice,
    upload: Any,
    scan: scans.Scan,
    member: Member | None = None,
    phone: str = "",
    store_member_id: str = "",
    by_guardian: bool = False,
    reference: str = "",
) -> PaperConsent:
    """Record the choices of one signed form for the person (``member``, or the one
    identity resolution finds or creates for ``phone`` at ``store``), with the scan kept in
    storage and named by its SHA-256 in the evidence; audited as the current actor.

    The file is written before the transaction (slow I/O stays out of it) and removed
    again if nothing is recorded and nobody kept it before."""
    if not choices:
        raise PaperConsentError("choices", _("Mark at least one purpose as granted or withdrawn on the form."))
    if (member is None) == (not phone):
        raise PaperConsentError("person", _("Give the person's phone number or their member id, not both."))
    if store.brand_id != brand.pk:
        raise PaperConsentError("store", _("This store belongs to another brand."))
    if signed_on > timezone.localdate():
        raise PaperConsentError("signed_on", _("The form cannot be signed in the future."))
    path, created = scans.keep_scan(upload, scan, brand.pk)
    try:
        return _record(
            brand=brand, store=store, choices=choices, signed_on=signed_on, signed_at=signed_at, notice=notice,
            scan=scan, member=member, phone=phone, store_member_id=store_member_id.strip(),
            by_guardian=by_guardian, reference=reference.strip()[:MAX_REFERENCE], path=path,
        )  # fmt: skip
    except BaseException:
        if created:
            scans.forget_scan(path)
        raise


@transaction.atomic
def _record(
    *,
    brand: Brand,
    store: Store,
    choices: list[PaperChoice],
    signed_on: dt.date,
    signed_at: dt.time | None,
    notice: Notice,
    scan: scans.Scan,
    member: Member | None,
    phone: str,
    store_member_id: str,
    by_guardian: bool,
    reference: str,
    path: str,
) -> PaperConsent:
    actor = audit.current_actor()
    now = timezone.now()
    new_member = False
    if member is None:
        signed = paper_moment(signed_on, signed_at, Action.GRANTED, now=now)
        member, new_member = _person_by_phone(store=store, phone=phone, store_member_id=store_member_id, signed=signed)
    else:
        member = canonical_member(member)
    evidence: dict[str, Any] = {
        "form": "paper",
        "scan": scan.evidence(brand.pk),
        "signed_on": signed_on.isoformat(),
        "recorded_by": actor.label,
    }
    if signed_at is not None:
        evidence["signed_at"] = signed_at.strftime("%H:%M")
    if reference:
        evidence["reference"] = reference
    items = [
        ConsentInput(
            member=member, purpose=choice.purpose, action=choice.action, channel=choice.channel,
            occurred_at=paper_moment(signed_on, signed_at, choice.action, now=now), store=store, notice=notice,
            evidence=evidence, by_guardian=by_guardian, external_id=external_id(scan, choice),
        )
        for choice in choices
    ]  # fmt: skip
    try:
        recorded = record_consents(items, brand=brand, source_type=SourceType.PAPER_FORM, source_ref=actor.label)
    except BatchConsentError as exc:
        choice = choices[exc.index]
        raise PaperConsentError(
            "choices",
            _("%(purpose)s %(channel)s: %(problem)s")
            % {"purpose": choice.purpose.name, "channel": choice.channel, "problem": exc.message},
        ) from None
    audit.record(
        "consent.paper_recorded",
        member,
        changes={
            "brand": brand.code, "store": store.code, "scan_sha256": scan.sha256, "signed_on": signed_on.isoformat(),
            "events": [r.event.pk for r in recorded if r.created], "already_recorded": sum(not r.created for r in recorded),
            "choices": [{"purpose": c.purpose.code, "channel": c.channel, "action": c.action} for c in choices],
            "new_member": new_member,
        },
    )  # fmt: skip
    return PaperConsent(member=member, recorded=recorded, scan_path=path, new_member=new_member)


def _person_by_phone(*, store: Store, phone: str, store_member_id: str, signed: dt.datetime) -> tuple[Member, bool]:
    """The person behind the phone written on the form, found (or created) by identity
    resolution as a record of ``store``. Their member number there: the one on the form,
    else the one they already have at this store, else the phone itself (what counters
    without member cards key people by)."""
    number = store_member_id or _number_at(store, phone) or phone
    known = StoreMembership.objects.filter(store=store, store_member_id=number).exists()
    try:
        record = StoreRecord.clean(
            store=store, store_member_id=number, phone=phone, observed_at=signed, joined_at=None if known else signed
        )
        resolution = resolve_store_record(record)
    except RecordError as exc:
        field = "store_member_id" if exc.field == "member_id" else "phone"
        raise PaperConsentError(field, exc.message) from None
    return resolution.member, resolution.created


def _number_at(store: Store, phone: str) -> str:
    owner = Identity.objects.filter(kind=IdentityKind.PHONE, value=phone).values_list("member_id", flat=True).first()
    if owner is None:
        return ""
    survivor = Member.objects.filter(pk=owner).values_list("merged_into_id", flat=True).first() or owner
    return (
        StoreMembership.objects.filter(store=store, member_id__in=person(survivor))
        .order_by("pk")
        .values_list("store_member_id", flat=True)
        .first()
        or ""
    )

"""Writes of the privacy center: claiming a profile, withdrawing every consent, and
data-subject requests (access, correction, deletion) with the erasure itself.

Each public function is one transaction; mails and tasks run after commit. Consent only
ever changes through ``services.record_consent`` (the ledger's one door).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from cdp import audit
from cdp.enqueue import enqueue_on_commit
from consent import services
from consent.models import Action, ConsentState, Preference, SourceType
from consent.services import GRANTING
from members import signals as member_signals
from members.identities import ERASED_PREFIX, erased_value
from members.models import Identity, IdentityKind, Member, StoreMembership
from members.queries import canonical_member

from . import accounts, deadlines, erasure
from .models import DataSubjectRequest, PrivacyAccount

logger = logging.getLogger(__name__)

MAX_DETAILS = 4000


class RequestError(ValueError):
    """A request the person cannot make now; ``message`` says why in plain words."""


# --- Accounts and claiming ---------------------------------------------------------------


@transaction.atomic
def claim_contact(*, user: Any, kind: str, value: str) -> Member | None:
    """The signed-in ``user`` proved they own ``value`` (a verified e-mail or phone): link
    their account to the member holding that identity. A second proven identity of
    another member means both are this one person: the two are merged (rule = the kind of
    identity proven). Returns the linked member, or None if no member holds ``value``."""
    if kind not in (IdentityKind.EMAIL, IdentityKind.PHONE):
        raise ValueError(f"cannot claim a {kind!r}")
    account = PrivacyAccount.objects.select_for_update().filter(user=user).first() or accounts.account_for(user)
    if account.closed_at is not None:
        return None
    identity = Identity.objects.select_related("member__merged_into").filter(kind=kind, value=value).first()
    if identity is None:
        return account.member
    owner = canonical_member(identity.member)
    if not owner.is_active:
        return account.member
    if account.member_id is None:
        account.member = owner
        account.linked_at = timezone.now()
        account.save(update_fields=["member", "linked_at"])
        audit.record("privacy.claimed", owner, changes={"account": account.pk, "proven": kind})
        return owner
    current = canonical_member(account.member)
    if current.pk != owner.pk:
        from members.services import merge_members

        # None when the two are a never-merge pair (an undone merge): they stay apart.
        merged = merge_members(current, owner, rule=kind, matched_value=value) is not None
        current = canonical_member(Member.objects.select_related("merged_into").get(pk=current.pk))
        audit.record("privacy.claimed", current, changes={"account": account.pk, "proven": kind, "merged": merged})
    if account.member_id != current.pk:
        account.member = current
        account.save(update_fields=["member"])
    return current


@transaction.atomic
def claim_phone(*, user: Any, phone: str) -> Member | None:
    """A sign-in code proved ``phone``: it becomes the account's phone and the member
    holding it is claimed, in one transaction."""
    accounts.prove_phone(user, phone=phone)
    return claim_contact(user=user, kind=IdentityKind.PHONE, value=phone)


def claim_verified_contacts(user: Any) -> Member | None:
    """Claim every contact point of ``user`` that allauth has verified (after sign-in)."""
    from allauth.account.models import EmailAddress

    member = None
    for email in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True):
        member = claim_contact(user=user, kind=IdentityKind.EMAIL, value=email.lower()) or member
    account = PrivacyAccount.objects.filter(user=user).first()
    if account is not None and account.phone and account.phone_verified:
        member = claim_contact(user=user, kind=IdentityKind.PHONE, value=account.phone) or member
    return member


# --- Withdrawing consent -----------------------------------------------------------------


def _granting_states(member: Member, brand_id: int | None = None) -> list[ConsentState]:
    states = ConsentState.objects.select_related("brand", "purpose").filter(member_id=member.pk, action__in=GRANTING)
    if brand_id is not None:
        states = states.filter(brand_id=brand_id)
    return list(states.order_by("brand_id", "purpose_id", "channel"))


def _withdraw_states(
    member: Member,
    states: list[ConsentState],
    *,
    source_type: str,
    evidence: dict[str, Any],
    occurred_at: dt.datetime | None = None,
) -> int:
    for state in states:
        services.record_consent(
            member=member,
            brand=state.brand,
            purpose=state.purpose,
            channel=state.channel,
            action=Action.WITHDRAWN,
            source_type=source_type,
            evidence=evidence,
            occurred_at=occurred_at,
        )
    return len(states)


@transaction.atomic
def withdraw_all(
    *,
    member: Member,
    account: PrivacyAccount | None,
    evidence: dict[str, Any],
    brand_id: int | None = None,
    offline: Offline | None = None,
) -> DataSubjectRequest:
    """Withdraw every consent the person has given (to one brand, or to all) in one step,
    and keep the request as a completed data-subject request. ``offline``: staff record a
    request made by phone, letter or at a counter (the ledger's source is the staff)."""
    member = canonical_member(member)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    request = _new_request(
        member=member,
        account=account,
        kind=DataSubjectRequest.Kind.WITHDRAW_ALL,
        status=DataSubjectRequest.Status.COMPLETED,
        completed_at=timezone.now(),
        details=f"brand {brand_id}" if brand_id else "",
        **(offline.fields() if offline else {}),
    )
    count = _withdraw_states(
        member,
        _granting_states(member, brand_id),
        source_type=SourceType.ADMIN_USER if offline else SourceType.PRIVACY_CENTER,
        occurred_at=offline.received_at if offline else None,
        evidence={**evidence, "withdraw_all_request": request.pk},
    )
    request.outcome = {"withdrawn": count}
    request.save(update_fields=["outcome"])
    audit.record("privacy.withdraw_all", member, changes={"request": request.pk, "withdrawn": count})
    return request


# --- Data-subject requests ---------------------------------------------------------------


@dataclass(frozen=True)
class Offline:
    """A request made outside the privacy center, recorded by staff: how it came and when."""

    via: str
    received_at: dt.datetime

    def fields(self) -> dict[str, Any]:
        return {"received_via": self.via, "received_at": self.received_at}


OFFLINE_VIA = (
    DataSubjectRequest.Via.PHONE,
    DataSubjectRequest.Via.LETTER,
    DataSubjectRequest.Via.STORE_COUNTER,
    DataSubjectRequest.Via.EMAIL,
)


def record_offline_request(
    *, member: Member, kind: str, via: str, received_at: dt.datetime, details: str = "", staff_label: str = ""
) -> DataSubjectRequest:
    """A request a person made by phone, letter, at a store counter or by e-mail, recorded
    by staff (audited as them): the same rules as in the privacy center, the deadline
    counted from when it was received. A copy of the data and a correction wait for the
    officer; a deletion starts the erasure; a withdrawal of all consent is done at once,
    through the ledger, with the channel and the staff member as evidence."""
    if via not in OFFLINE_VIA:
        raise RequestError(gettext("Say how the request came: by phone, letter, at a store counter or by e-mail."))
    if received_at > timezone.now() + dt.timedelta(minutes=5):
        raise RequestError(gettext("The time the request was received is in the future."))
    if member.status == Member.Status.ERASED:
        raise RequestError(gettext("This person's data was erased already."))
    offline = Offline(via, received_at)
    if kind == DataSubjectRequest.Kind.DELETION:
        return request_deletion(member=member, account=None, offline=offline)
    if kind == DataSubjectRequest.Kind.WITHDRAW_ALL:
        evidence = {"received_via": via, "recorded_by": staff_label, "details": _details(details, required=False)}
        return withdraw_all(member=member, account=None, evidence=evidence, offline=offline)
    if kind == DataSubjectRequest.Kind.CORRECTION:
        return request_correction(member=member, account=None, details=details, offline=offline)
    if kind != DataSubjectRequest.Kind.ACCESS:
        raise RequestError(gettext("Unknown kind of request."))
    # A copy asked for by letter is sent by the officer: it waits in the queue.
    with transaction.atomic():
        request = _new_request(
            member=canonical_member(member), kind=kind, details=_details(details, required=False), **offline.fields()
        )
        audit.record("privacy.offline_request", request.member,
                     changes={"request": request.pk, "kind": kind, "via": via})  # fmt: skip
    return request


def _details(details: str, *, required: bool) -> str:
    """What the person wrote, trimmed; a correction must say what is wrong."""
    text = (details or "").strip()
    if required and not text:
        raise RequestError(gettext("Please say what is wrong and what it should be."))
    if len(text) > MAX_DETAILS:
        raise RequestError(gettext("Please keep the description under 4,000 characters."))
    return text


def _new_request(
    *, member: Member, kind: str, received_at: dt.datetime | None = None, **fields: Any
) -> DataSubjectRequest:
    """A request with the jurisdiction of the brands holding the person's data and the
    deadline of that jurisdiction's rule, counted from when it was received."""
    received = received_at or timezone.now()
    jurisdiction = deadlines.jurisdiction_for(member.pk, kind)
    return DataSubjectRequest.objects.create(
        member=member,
        kind=kind,
        received_at=received,
        jurisdiction=jurisdiction,
        due_at=deadlines.due_at(jurisdiction, received, kind),
        **fields,
    )


@transaction.atomic
def record_access_request(*, member: Member, account: PrivacyAccount | None) -> DataSubjectRequest:
    """A copy of the data is produced on the spot (``privacy.export``): the request
    is complete as soon as it is made, and kept so the person and the officer see it."""
    request = _new_request(
        member=canonical_member(member),
        account=account,
        kind=DataSubjectRequest.Kind.ACCESS,
        status=DataSubjectRequest.Status.COMPLETED,
        completed_at=timezone.now(),
    )
    audit.record("privacy.access_request", request.member, changes={"request": request.pk})
    return request


@transaction.atomic
def request_correction(
    *, member: Member, account: PrivacyAccount | None, details: str, offline: Offline | None = None
) -> DataSubjectRequest:
    request = _new_request(
        member=canonical_member(member), account=account, kind=DataSubjectRequest.Kind.CORRECTION,
        details=_details(details, required=True), **(offline.fields() if offline else {}),
    )  # fmt: skip
    audit.record("privacy.correction_request", request.member,
                 changes={"request": request.pk, **({"via": offline.via} if offline else {})})  # fmt: skip
    return request


@transaction.atomic
def request_deletion(
    *, member: Member, account: PrivacyAccount | None, offline: Offline | None = None
) -> DataSubjectRequest:
    """Record the request and erase right after commit (Celery). A second request while one
    is open returns the open one."""
    member = canonical_member(member)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    open_request = DataSubjectRequest.objects.filter(
        member=member,
        kind=DataSubjectRequest.Kind.DELETION,
        status__in=[DataSubjectRequest.Status.RECEIVED, DataSubjectRequest.Status.IN_PROGRESS],
    ).first()
    if open_request is not None:
        return open_request
    request = _new_request(
        member=member, account=account, kind=DataSubjectRequest.Kind.DELETION, **(offline.fields() if offline else {})
    )
    audit.record("privacy.deletion_request", member, changes={"request": request.pk})
    request_id = request.pk
    enqueue_on_commit("privacy.tasks.erase_member_data", request_id)
    return request


# --- Erasure -----------------------------------------------------------------------------


@dataclass
class Erasure:
    request: DataSubjectRequest
    done_now: bool  # False: it had been done before (a second run of the task)


_ERASED_MEMBER_FIELDS = {
    "name": "",
    "gender": "",
    "birth_date": None,
    "province": "",
    "city": "",
    "phone": "",
    "email": "",
    "attributes": {},
}


@transaction.atomic(durable=True)
def carry_out_deletion(request_id: int) -> Erasure:
    """Erase the person behind a deletion request (DESIGN.md ⚑): withdraw every consent
    through the ledger, replace identities and store member ids by keyed hashes, blank the
    profile, drop preferences, close their privacy center account, remove their values
    from merge history, request texts, audit rows, suppression labels and sessions
    (``privacy.erasure``), and mail a final receipt. Webhook bodies and uploaded files go
    through their apps' receivers of ``member_erased``. The ledger itself is kept as
    proof. Running it twice does nothing more."""
    request = DataSubjectRequest.objects.select_for_update().select_related("member").get(pk=request_id)
    if request.kind != DataSubjectRequest.Kind.DELETION:
        raise ValueError(f"request {request_id} is not a deletion request")
    if request.status in (DataSubjectRequest.Status.COMPLETED, DataSubjectRequest.Status.REJECTED):
        # Done before, or refused by the privacy officer (with the reason shown to the person).
        return Erasure(request, done_now=False)
    member = canonical_member(request.member)
    Member.objects.select_for_update().filter(pk=member.pk).first()
    member.refresh_from_db()
    mail_to, language = member.email, member.locale

    withdrawn = _withdraw_states(
        member,
        _granting_states(member),
        source_type=SourceType.PRIVACY_CENTER,
        evidence={"deletion_request": request.pk},
    )
    # Identities of the person and of everyone merged into them.
    people = Q(member_id=member.pk) | Q(member__merged_into_id=member.pk)
    people_ids = erasure.people_of(member)
    identities = list(Identity.objects.filter(people).exclude(value__startswith=ERASED_PREFIX))
    emails = [i.value for i in identities if i.kind == IdentityKind.EMAIL]
    phones = [i.value for i in identities if i.kind == IdentityKind.PHONE]
    # Read before anything is blanked: the clear values to find and redact elsewhere.
    terms = erasure.personal_terms(people_ids)
    hashes = erasure.contact_hashes(people_ids)
    user_ids, account_ids = erasure.sign_in_users(people_ids, emails=emails, phones=phones)
    _forget_sign_in_contacts(emails=emails, phones=phones)
    hashed = 0
    for identity in identities:
        identity.value = erased_value(identity.kind, identity.value)
        identity.save(update_fields=["value"])
        hashed += 1
    for membership in StoreMembership.objects.filter(people).exclude(store_member_id__startswith=ERASED_PREFIX):
        membership.store_member_id = erased_value(
            "store_member_id", f"{membership.store_id}:{membership.store_member_id}"
        )
        membership.save(update_fields=["store_member_id", "updated_at"])
    Member.objects.filter(merged_into_id=member.pk).update(**_ERASED_MEMBER_FIELDS)
    for name, value in _ERASED_MEMBER_FIELDS.items():
        setattr(member, name, value)
    member.status = Member.Status.ERASED
    member.save()
    # Stores and platforms erase their copies too (webhook member.erased).
    brand_ids = sorted(set(StoreMembership.objects.filter(people).values_list("store__brand_id", flat=True)))
    member_signals.member_erased.send(sender=Member, member_id=member.pk, brand_ids=brand_ids)
    preferences, _ = Preference.objects.filter(member_id=member.pk).delete()
    closed = _close_accounts(member)
    forgotten = erasure.forget_everywhere(
        people=people_ids, terms=terms, hashes=hashes, user_ids=user_ids, account_ids=account_ids
    )

    request.status = DataSubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.outcome = {
        "consents_withdrawn": withdrawn,
        "identities_hashed": hashed,
        "preferences_deleted": preferences,
        "accounts_closed": closed,
        **forgotten,
    }
    request.save(update_fields=["status", "completed_at", "outcome"])
    audit.record("privacy.erased", member, changes={"request": request.pk, **request.outcome})
    if mail_to:
        enqueue_on_commit("privacy.tasks.send_erasure_receipt", request.pk, mail_to, language)
    return Erasure(request, done_now=True)


def _forget_sign_in_contacts(*, emails: list[str], phones: list[str]) -> None:
    """Sign-in records holding the erased addresses in clear: also those of accounts made
    when someone asked for a code and never entered it. Staff accounts are left alone."""
    from allauth.account.models import EmailAddress

    User = get_user_model()  # noqa: N806
    EmailAddress.objects.filter(email__in=emails, user__is_staff=False).delete()
    User.objects.filter(email__in=emails, is_staff=False).update(email="", is_active=False)
    PrivacyAccount.objects.filter(phone__in=phones).update(phone=None, phone_verified=False)


def _close_accounts(member: Member) -> int:
    from allauth.account.models import EmailAddress

    accounts = list(PrivacyAccount.objects.filter(member_id=member.pk, closed_at__isnull=True))
    user_ids = [a.user_id for a in accounts]
    EmailAddress.objects.filter(user_id__in=user_ids).delete()
    get_user_model().objects.filter(pk__in=user_ids, is_staff=False).update(is_active=False, email="")
    PrivacyAccount.objects.filter(pk__in=[a.pk for a in accounts]).update(
        closed_at=timezone.now(), phone=None, phone_verified=False
    )
    # Sessions of closed users end: Django's backends refuse inactive users on every request.
    return len(accounts)

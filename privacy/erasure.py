"""What an erasure removes beyond the profile and identities (DESIGN.md ⚑ deletion: "no
clear personal data of the person remains in any table ... or file"): the person's values
in merge history, data-request texts, audit rows, suppression labels, sign-in sessions
and accounts. Called by ``rights.carry_out_deletion`` inside its transaction; webhook
bodies and uploaded files are forgotten by their apps on ``members.signals.member_erased``.

What stays, as proof: the consent ledger (its evidence holds no contact points), keyed
hashes (identities, store member ids, merge events, suppressions), ids, counts and times.
docs/erasure.md lists every place.
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from cdp import audit
from consent.models import Suppression
from consent.models.preferences import suppression_hash
from members.identities import ERASED_PREFIX
from members.models import Identity, IdentityKind, Member, StoreMembership
from members.services import forget_merge_values

from .models import DataSubjectRequest, PrivacyAccount


def personal_terms(people: list[int]) -> list[str]:
    """Every clear value of these members that must not outlive the erasure, in the forms
    it is written in (a phone as +8613800138000, 13800138000, 8613800138000): read before
    the profile is blanked, to find and redact copies of it elsewhere."""
    terms: set[str] = set()
    for name, phone, email in Member.objects.filter(pk__in=people).values_list("name", "phone", "email"):
        terms |= {name, email, *phone_forms(phone)}
    for kind, value in Identity.objects.filter(member_id__in=people).values_list("kind", "value"):
        if value.startswith(ERASED_PREFIX):
            continue
        if kind == IdentityKind.PHONE:
            terms |= set(phone_forms(value))
        elif kind in (IdentityKind.STORE_MEMBER, IdentityKind.PLATFORM_USER):
            terms.add(value.partition(":")[2])
        else:
            terms.add(value)
    for store_member_id in StoreMembership.objects.filter(member_id__in=people).values_list(
        "store_member_id", flat=True
    ):
        if not store_member_id.startswith(ERASED_PREFIX):
            terms.add(store_member_id)
    # Short values (a one-character name, "T1") would match unrelated text.
    return sorted(t for t in terms if t and len(t) >= 3)


def phone_forms(phone: str) -> list[str]:
    if not phone:
        return []
    forms = [phone]
    if phone.startswith("+86"):
        forms += [phone[3:], phone[1:]]
    elif phone.startswith("+"):
        forms.append(phone[1:])
    return forms


def contact_hashes(people: list[int]) -> list[str]:
    """The keyed hashes the person's phones and e-mails are suppressed under."""
    hashes = []
    for kind, value in Identity.objects.filter(
        member_id__in=people, kind__in=[IdentityKind.PHONE, IdentityKind.EMAIL]
    ).values_list("kind", "value"):
        hashes.append(value if value.startswith(ERASED_PREFIX) else suppression_hash(kind, value))
    return hashes


def sign_in_users(people: list[int], *, emails: list[str], phones: list[str]) -> tuple[list[int], list[int]]:
    """(user ids, account ids) of the person's privacy center sign-ins: accounts linked to
    them, and accounts holding one of their contact points (made when someone asked for a
    code and never entered it). Staff users are never among them."""
    from allauth.account.models import EmailAddress

    accounts = PrivacyAccount.objects.filter(Q(member_id__in=people) | Q(phone__in=phones))
    user_ids = set(accounts.values_list("user_id", flat=True))
    user_ids |= set(EmailAddress.objects.filter(email__in=emails).values_list("user_id", flat=True))
    user_ids |= set(get_user_model().objects.filter(email__in=emails).values_list("pk", flat=True))
    users = get_user_model().objects.filter(pk__in=user_ids, is_staff=False).values_list("pk", flat=True)
    return sorted(users), sorted(accounts.values_list("pk", flat=True))


def forget_everywhere(
    *, people: list[int], terms: list[str], hashes: list[str], user_ids: list[int], account_ids: list[int]
) -> dict[str, int]:
    """Remove the person's clear values from the places that kept copies; returns counts
    for the request's outcome. Runs after identities are hashed, inside the erasure."""
    requests = list(DataSubjectRequest.objects.filter(member_id__in=people).values_list("pk", flat=True))
    counts = {
        "merge_events_hashed": forget_merge_values(people),
        # What each store's records said of them (the brand wall's per-store profile).
        "membership_profiles_erased": StoreMembership.objects.filter(member_id__in=people).update(profile={}),
        "request_texts_erased": _forget_request_texts(requests, terms),
        # The label staff read; the keyed hash keeps the contact point suppressed.
        "suppressions_unlabelled": Suppression.objects.filter(value_hash__in=hashes).exclude(value="").update(value=""),
        "sessions_ended": end_sessions(user_ids=user_ids, terms=terms),
        "sign_in_users_erased": _forget_users(user_ids),
    }
    counts["audit_rows_redacted"] = audit.forget_objects(
        {
            Member._meta.label_lower: people,
            DataSubjectRequest._meta.label_lower: requests,
            PrivacyAccount._meta.label_lower: account_ids,
            StoreMembership._meta.label_lower: list(
                StoreMembership.objects.filter(member_id__in=people).values_list("pk", flat=True)
            ),
            Identity._meta.label_lower: list(
                Identity.objects.filter(member_id__in=people).values_list("pk", flat=True)
            ),
        },
        terms=terms,
    )
    return counts


def _forget_request_texts(request_ids: list[int], terms: list[str]) -> int:
    """What the person wrote (a correction's details) goes; the officer's answers go where
    they name the person. The requests stay: kind, dates, status and outcome."""
    changed = 0
    for request in DataSubjectRequest.objects.filter(pk__in=request_ids):
        fields = {"details": ""}
        for name in ("response", "extension_reason"):
            text = getattr(request, name)
            if text and any(term.casefold() in text.casefold() for term in terms):
                fields[name] = audit.ERASED_TEXT
        if any(getattr(request, name) != value for name, value in fields.items()):
            changed += DataSubjectRequest.objects.filter(pk=request.pk).update(**fields)
    return changed


def _forget_users(user_ids: list[int]) -> int:
    """Privacy center sign-in users (never staff) keep their row for the foreign keys, not
    their name: allauth may have derived the username from the e-mail address."""
    users = get_user_model().objects.filter(pk__in=user_ids, is_staff=False)
    changed = 0
    for user in users:
        user.username = f"erased-{user.pk}"
        user.first_name = user.last_name = user.email = ""
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["username", "first_name", "last_name", "email", "is_active", "password"])
        changed += 1
    return changed


def end_sessions(*, user_ids: list[int], terms: list[str]) -> int:
    """Delete the sessions of the person's sign-in users and every session whose data
    names one of their contact points (a sign-in code asked for and never entered keeps
    the address in the session). Sessions have no user column to filter on: each stored
    session is decoded, which an erasure (rare) can afford; a session backend that cannot
    be listed (cache, signed cookies) ends at its expiry, its user being inactive."""
    if not settings.SESSION_ENGINE.endswith(("sessions.backends.db", "sessions.backends.cached_db")):
        return 0
    from django.contrib.sessions.models import Session

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    wanted = {str(pk) for pk in user_ids}
    folded = [term.casefold() for term in terms]
    ended = 0
    for key, data in Session.objects.values_list("session_key", "session_data").iterator(chunk_size=1000):
        decoded: dict[str, Any] = store_class().decode(data)
        text = json.dumps(decoded, ensure_ascii=False, default=str).casefold()
        if str(decoded.get("_auth_user_id")) in wanted or any(term in text for term in folded):
            store_class(session_key=key).delete()
            ended += 1
    return ended


def people_of(member: Member) -> list[int]:
    return [member.pk, *Member.objects.filter(Q(merged_into_id=member.pk)).values_list("pk", flat=True)]

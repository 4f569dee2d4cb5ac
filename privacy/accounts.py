"""Privacy center accounts: opened on the fly for a person a store knows, and the phone
number allauth signs them in with. An account is linked to a member only after a code
proved the contact point (``rights.claim_contact``)."""

from __future__ import annotations

import secrets
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .models import PrivacyAccount


def account_for(user: Any) -> PrivacyAccount:
    account, _ = PrivacyAccount.objects.get_or_create(user=user)
    return account


def _new_user(*, email: str = "") -> Any:
    user = get_user_model()(username=f"p-{secrets.token_hex(8)}", email=email)
    user.set_unusable_password()
    user.save()
    return user


def open_account_for_email(email: str) -> Any:
    """A user with an unverified ``email`` and an unlinked account, or the user a
    concurrent request made for it first. Returns None only if that one vanished."""
    try:
        with transaction.atomic():
            user = _new_user(email=email)
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            PrivacyAccount.objects.create(user=user)
            return user
    except IntegrityError:  # a concurrent request created it first
        address = EmailAddress.objects.select_related("user").filter(email__iexact=email).first()
        return address.user if address else None


def open_account_for_phone(phone: str) -> Any:
    """A user whose unlinked account holds the unverified ``phone`` (see above)."""
    try:
        with transaction.atomic():
            user = _new_user()
            PrivacyAccount.objects.create(user=user, phone=phone, phone_verified=False)
            return user
    except IntegrityError:
        account = PrivacyAccount.objects.select_related("user").filter(phone=phone).first()
        return account.user if account else None


@transaction.atomic
def set_phone(user: Any, *, phone: str, verified: bool) -> PrivacyAccount:
    """Store the phone allauth signs ``user`` in with (unverified until a code proves it)."""
    account = account_for(user)
    account.phone, account.phone_verified = phone, verified
    account.save(update_fields=["phone", "phone_verified"])
    return account


@transaction.atomic
def prove_phone(user: Any, *, phone: str) -> PrivacyAccount:
    """The code proved ``phone``: it becomes the account's verified phone. An account
    made on the fly for this number by someone who never entered the code proves
    nothing: it gives the number up."""
    PrivacyAccount.objects.filter(phone=phone, phone_verified=False).exclude(user=user).update(phone=None)
    return set_phone(user, phone=phone, verified=True)

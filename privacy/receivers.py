"""allauth signals that prove ownership of a contact point after sign-in."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import email_confirmed

from members.models import IdentityKind


def on_email_confirmed(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    """A person added an e-mail address on their account and entered its code."""
    from . import rights

    rights.claim_contact(user=email_address.user, kind=IdentityKind.EMAIL, value=email_address.email.lower())


def connect() -> None:
    email_confirmed.connect(on_email_confirmed, dispatch_uid="privacy.email_confirmed")

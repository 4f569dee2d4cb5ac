"""allauth signals that prove ownership of a contact point after sign-in; brand saves
that change which hosts wear a brand's face."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import email_confirmed
from django.db.models.signals import post_delete, post_save

from members.models import Brand, IdentityKind

from . import face


def on_email_confirmed(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    """A person added an e-mail address on their account and entered its code."""
    from . import rights

    rights.claim_contact(user=email_address.user, kind=IdentityKind.EMAIL, value=email_address.email.lower())


def connect() -> None:
    email_confirmed.connect(on_email_confirmed, dispatch_uid="privacy.email_confirmed")
    # A brand's own host is recognised at once in this process (privacy.face.brand_hosts).
    for signal in (post_save, post_delete):
        signal.connect(face.forget_hosts, sender=Brand, dispatch_uid=f"privacy.forget_hosts.{signal}")

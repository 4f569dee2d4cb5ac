"""Signed tokens for the links in mails: double opt-in confirmation and unsubscribe.

Both are bearer tokens, as every mail link is: whoever holds the link may act on it. They
carry ids only (never an address), are signed with ``SECRET_KEY`` (rotate it through
``SECRET_KEY_FALLBACKS`` so links already sent keep working), and each use has its own
salt, so a token made for one use can never be replayed as the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

# Bump the version suffix to invalidate every outstanding link of one kind at once.
OPT_IN_SALT = "consent.double-opt-in.v1"
UNSUBSCRIBE_SALT = "consent.unsubscribe.v1"


class TokenError(Exception):
    """A link that cannot be acted on."""


class ForgedToken(TokenError):
    """Not signed by us: altered, truncated, made up, or made for another use."""


class ExpiredToken(TokenError):
    """Signed by us, but older than the link may be."""


@dataclass(frozen=True)
class UnsubscribeTarget:
    member_id: int
    brand_id: int
    purpose_id: int
    channel: str


def make_opt_in_token(event_id: int) -> str:
    """Token for the ``requested`` event ``event_id``; it carries its signing time."""
    return signing.dumps(event_id, salt=OPT_IN_SALT)


def read_opt_in_token(token: str) -> int:
    """The ``requested`` event id in ``token``; ``ForgedToken`` or ``ExpiredToken`` if unusable."""
    max_age = dt.timedelta(days=settings.DOUBLE_OPT_IN_MAX_AGE_DAYS)
    try:
        value = signing.loads(token, salt=OPT_IN_SALT, max_age=max_age)
    except signing.SignatureExpired:
        # Only raised once the signature checked out: an expired link is a real one.
        raise ExpiredToken("this confirmation link has expired") from None
    except (signing.BadSignature, ValueError):
        raise ForgedToken("this confirmation link is not valid") from None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ForgedToken("this confirmation link is not valid")
    return value


def make_unsubscribe_token(member_id: int, brand_id: int, purpose_id: int, channel: str) -> str:
    """Token naming what to withdraw. No timestamp: unsubscribe links must work forever
    (a mail read years later still has to honour "no"), and a plain dotted payload keeps
    the URL short, which some mail clients need to keep links clickable."""
    payload = f"{int(member_id)}.{int(brand_id)}.{int(purpose_id)}.{channel}"
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(payload)


def read_unsubscribe_token(token: str) -> UnsubscribeTarget:
    try:
        payload = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    except (signing.BadSignature, ValueError):
        raise ForgedToken("this unsubscribe link is not valid") from None
    parts = payload.split(".")
    if len(parts) != 4 or not all(part.isdigit() for part in parts[:3]):
        raise ForgedToken("this unsubscribe link is not valid")
    return UnsubscribeTarget(int(parts[0]), int(parts[1]), int(parts[2]), parts[3])

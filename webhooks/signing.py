"""How deliveries are signed (and how a receiver checks them; see docs/api.md, "Webhooks").

Every delivery carries both:

- the Standard Webhooks headers (https://www.standardwebhooks.com/): ``webhook-id`` (the
  event id, the same on every retry: the receiver's idempotency key), ``webhook-timestamp``
  and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>." + body)>``, where
  the key is the base64 part of the ``whsec_…`` secret. A receiver checks them with the
  ``standardwebhooks`` library of its language, not with our recipe.
- deprecated, for one release: ``X-CDP-Signature: t=<unix seconds>,v1=<hex
  HMAC-SHA256(secret, "<t>." + body)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from cdp.standard_webhooks import SECRET_PREFIX, new_secret

__all__ = ["SECRET_PREFIX", "new_secret"]  # also used from here by the webhooks app

SIGNATURE_HEADER = "X-CDP-Signature"  # deprecated: Standard Webhooks' headers replace it
TOLERANCE_SECONDS = 300


def signing_key(secret: str) -> bytes:
    """The key a ``whsec_`` secret stands for. Secrets made before Standard Webhooks were
    URL-safe base64 without padding; they stand for the same bytes (docs/api.md says how a
    receiver writes such a secret for its library)."""
    text = secret.removeprefix(SECRET_PREFIX).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return secret.encode()  # not base64 at all: the text itself


def standard_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    signed = hmac.new(signing_key(secret), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(signed.digest()).decode(),
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is fresh (replays are refused)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)

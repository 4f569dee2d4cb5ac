"""Secrets in the Standard Webhooks form (https://www.standardwebhooks.com/): what we give
webhook receivers and consent-file partners (``webhooks``), and what platforms without an
adapter of their own sign their pushes with (``imports.platform_events``)."""

from __future__ import annotations

import base64
import secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every secret carries, not a secret


def new_secret() -> str:
    """``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()

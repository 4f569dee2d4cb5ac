"""Start-up checks of the privacy center's limit settings: a typo fails loudly at start-up
(``manage.py check``), not as a 500 on the first sign-in or as a limit that never holds."""

from __future__ import annotations

from typing import Any

import phonenumbers
from allauth.core.internal.ratelimit import parse_rates
from django.conf import settings
from django.core.checks import Error, register

RATE_SETTINGS = ("PRIVACY_RATE_CODE_REQUESTS", "PRIVACY_RATE_WRONG_CODES")
BUDGET_SETTINGS = ("SMS_BUDGET_PER_NUMBER", "SMS_BUDGET_PER_IP", "SMS_BUDGET_GLOBAL")


@register()
def check_limit_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for name in RATE_SETTINGS:
        value = getattr(settings, name, "")
        try:
            rates = parse_rates(value)
        except ValueError as error:
            errors.append(Error(f"{name}={value!r} is not a rate like 10/h/user ({error})", id="privacy.E001"))
            continue
        if any(rate.per not in ("ip", "key", "user") or rate.duration < 1 for rate in rates):
            errors.append(Error(f"{name}={value!r}: each rate needs a period and ip, key or user", id="privacy.E001"))
    unknown = [r for r in settings.SMS_REGIONS if r.upper() not in phonenumbers.SUPPORTED_REGIONS]
    if unknown or not settings.SMS_REGIONS:
        errors.append(Error(f"SMS_REGIONS: unknown region codes {unknown or '(none given)'}", id="privacy.E002"))
    for name in BUDGET_SETTINGS:
        if not isinstance(getattr(settings, name), int) or getattr(settings, name) < 0:
            errors.append(Error(f"{name} must be a whole number, 0 or more", id="privacy.E003"))
    return errors

"""Limits on sign-in codes and text messages: no brute-forcing a code, no SMS pumping.

What allauth already does is left to allauth (settings.py, ``ACCOUNT_*``): a code allows
``PRIVACY_CODE_MAX_ATTEMPTS`` wrong tries and is then dropped (login by code and phone
verification alike); codes asked for per IP and per number/address
(``request_login_code``), phone changes per account (``change_phone``) and phone codes
per number and IP (``verify_phone``). This module adds what it lacks:

- codes asked for per account (``PRIVACY_RATE_CODE_REQUESTS``);
- wrong codes per IP, per number/address and per account, across codes
  (``PRIVACY_RATE_WRONG_CODES``): a fresh code every few minutes does not buy an
  attacker unlimited guesses;
- hourly SMS budgets per number, per IP and in all (``SMS_BUDGET_*``), checked right
  before a message goes to the gateway, with a warning in the log at 80 % of the global one.

A refused request raises ``TooManyRequests`` (allauth's ``RateLimited``), which
``privacy.security`` answers with the 429 page in the person's language, or a problem+json
body for scripts. "Per account" is per user when the number or address belongs to one and
per number/address otherwise, so a limit never tells who has an account.

Counters are fixed windows in the Django cache (``cdp.cache.count_hit``): with Redis away
they live in each process's memory, so limits then hold per process, never not at all.
Cache keys hold hashes, not numbers or addresses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from allauth.core.exceptions import RateLimited
from allauth.core.internal.ratelimit import Rate, get_ip, parse_rates
from django.conf import settings
from django.core.cache import caches

from cdp.cache import count_hit

logger = logging.getLogger(__name__)

HOUR = 3600
WARN_AT = 0.8  # of the global SMS budget


class TooManyRequests(RateLimited):
    """Over a limit. ``reason`` picks the sentence of the 429 page; ``retry_after`` is in seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = max(int(math.ceil(retry_after)), 1)


@dataclass(frozen=True)
class Who:
    """Who a code is for and who asks: the request's IP, the number or address, the account."""

    ip: str
    recipient: str
    account: str

    @classmethod
    def of(cls, request: Any, *, recipient: str, user_id: Any = None) -> Who:
        recipient = (recipient or "").lower()
        account = f"user:{user_id}" if user_id else f"to:{recipient}"
        return cls(ip=_ip(request), recipient=recipient, account=account)

    def value(self, per: str) -> str:
        return {"ip": self.ip, "key": self.recipient, "user": self.account}[per]


def _ip(request: Any) -> str:
    if request is None:
        return "-"
    try:
        return get_ip(request)  # allauth's: the trusted-proxy rules, IPv6 by /64
    except Exception:  # noqa: BLE001 - no IP (PermissionDenied from allauth): one shared bucket
        return "-"


def _cache() -> Any:
    return caches["default"]


def _key(name: str, scope: str, value: str, duration: int, window: int) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    return f"privacy-limit:{name}:{scope}:{digest}:{duration}:{window}"


def _window(duration: int) -> tuple[int, float]:
    now = time.time()
    window = int(now // duration)
    return window, (window + 1) * duration - now


def rates(setting: str) -> list[Rate]:
    return parse_rates(getattr(settings, setting, ""))


# --- Codes asked for and codes checked ---------------------------------------------------


def count_code_request(request: Any, who: Who) -> None:
    """One more code asked for by or for ``who``; raises ``TooManyRequests`` past the limit."""
    for rate in rates("PRIVACY_RATE_CODE_REQUESTS"):
        duration = int(rate.duration)
        window, left = _window(duration)
        key = _key("code-requests", rate.per, who.value(rate.per), duration, window)
        if count_hit(_cache(), key, duration + 1) > rate.amount:
            raise TooManyRequests("code_requests", left)


def refuse_if_too_many_wrong_codes(who: Who) -> None:
    """Before a code is compared: refuse once ``who`` (their IP, number or account) has
    entered too many wrong codes lately, even when this one would be right."""
    for rate in rates("PRIVACY_RATE_WRONG_CODES"):
        duration = int(rate.duration)
        window, left = _window(duration)
        if (_cache().get(_key("wrong-codes", rate.per, who.value(rate.per), duration, window)) or 0) >= rate.amount:
            raise TooManyRequests("wrong_codes", left)


def count_wrong_code(who: Who) -> None:
    for rate in rates("PRIVACY_RATE_WRONG_CODES"):
        duration = int(rate.duration)
        window, _left = _window(duration)
        count_hit(_cache(), _key("wrong-codes", rate.per, who.value(rate.per), duration, window), duration + 1)


# --- SMS budgets ---------------------------------------------------------------------------


def spend_sms_budget(request: Any, phone: str) -> None:
    """Count one text message to ``phone`` against the hourly budgets, or raise
    ``TooManyRequests`` (and nothing may be sent). Called right before the gateway."""
    window, left = _window(HOUR)
    budgets = [
        ("number", phone, settings.SMS_BUDGET_PER_NUMBER),
        ("ip", _ip(request), settings.SMS_BUDGET_PER_IP),
        ("global", "all", settings.SMS_BUDGET_GLOBAL),
    ]
    for scope, value, budget in budgets:
        if budget <= 0:
            continue
        used = count_hit(_cache(), _key("sms", scope, value, HOUR, window), HOUR + 1)
        if scope == "global":
            _warn_about_global_budget(used, budget)
        if used > budget:
            raise TooManyRequests("sms_budget", left)


def _warn_about_global_budget(used: int, budget: int) -> None:
    # Exactly one request per window sees each of these counts (INCR is atomic), so each
    # line is logged once an hour (once per process while Redis is away).
    if used == max(math.ceil(budget * WARN_AT), 1):
        logger.warning(
            "SMS budget: %d of the %d text messages allowed this hour are sent (%d%%). "
            "At the budget, sign-in codes by SMS stop until the hour is over (SMS_BUDGET_GLOBAL).",
            used,
            budget,
            round(100 * used / budget),
        )
    elif used == budget + 1:
        logger.error("SMS budget: the %d text messages of this hour are used up; codes by SMS are refused", budget)


# --- A code entered wrong too often ---------------------------------------------------------

SPENT_CODE_SESSION_KEY = "privacy_code_spent"


def mark_code_spent(request: Any) -> None:
    """The person's code took its last wrong try: the sign-in and phone pages say so
    (also to a later try with that code) until a new code is asked for."""
    if request is not None and hasattr(request, "session"):
        request.session[SPENT_CODE_SESSION_KEY] = True
        request._privacy_code_spent = True


def forget_spent_code(request: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(SPENT_CODE_SESSION_KEY, None)


def code_was_spent_now(request: Any) -> bool:
    return bool(getattr(request, "_privacy_code_spent", False))

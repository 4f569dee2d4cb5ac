"""Sending text messages: a small pluggable interface for the SMS gateway.

``settings.SMS_BACKEND`` names a class with one method::

    class MyGateway(SmsBackend):
        def send(self, *, phone: str, text: str) -> None: ...

``phone`` is E.164 (``+8613800138000``), ``text`` is the whole message in the person's
language. ``send`` raises ``SmsError`` when the gateway refuses; the caller shows a
message and the person can ask for a new code. Backends must not log the text of codes
in production (the console backend exists for development only).

Only mobile numbers of the regions the brand serves (``SMS_REGIONS``) get messages
(``refusal``): premium-rate, shared-cost, toll-free, VoIP, pager, personal and unknown
ranges and landlines are what SMS pumping fraud sends to, and a sign-in code is of no use
there. Forms refuse them with an error (``privacy.adapter.PhoneField``); ``send_sms``
refuses them again, whatever the caller.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The gateway did not accept the message."""


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str


class SmsBackend:
    def send(self, *, phone: str, text: str) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(SmsBackend):
    """Development: prints the message, like Django's console e-mail backend."""

    def send(self, *, phone: str, text: str) -> None:
        sys.stdout.write(f"[SMS to {phone}] {text}\n")
        sys.stdout.flush()


# Messages sent through the locmem backend, for tests (like django.core.mail.outbox).
outbox: list[SmsMessage] = []


class LocmemSmsBackend(SmsBackend):
    def send(self, *, phone: str, text: str) -> None:
        outbox.append(SmsMessage(phone=phone, text=text))


def get_backend() -> SmsBackend:
    return import_string(settings.SMS_BACKEND)()


# FIXED_LINE_OR_MOBILE: ranges where phonenumbers cannot tell (none in CN, HK, MO, TW, RU
# today; the US and a few others), so a brand enabling such a region is not locked out.
MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def refusal(phone: str) -> str | None:
    """Why no text message may go to ``phone`` (E.164): ``"invalid"``, ``"region"`` (a
    country or region not in ``SMS_REGIONS``) or ``"not_mobile"``; None when it may."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "invalid"
    if not phonenumbers.is_valid_number(number):
        return "invalid"
    if phonenumbers.region_code_for_number(number) not in {r.upper() for r in settings.SMS_REGIONS}:
        return "region"
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        return "not_mobile"
    return None


def send_sms(phone: str, text: str) -> None:
    """Hand ``text`` to the gateway; raises ``SmsError`` for a number ``refusal`` refuses
    (no form should have let it through: this is the last line)."""
    refused = refusal(phone)
    if refused:
        logger.warning("Refused to send a text message to …%s: %s", phone[-4:], refused)
        raise SmsError(f"no text messages to this number ({refused})")
    get_backend().send(phone=phone, text=text)

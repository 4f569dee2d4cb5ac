"""Sending text messages: a small pluggable interface for the SMS gateway.

``settings.SMS_BACKEND`` names a class with one method::

    class MyGateway(SmsBackend):
        def send(self, *, phone: str, text: str) -> None: ...

``phone`` is E.164 (``+8613800138000``), ``text`` is the whole message in the person's
language. ``send`` raises ``SmsError`` when the gateway refuses; the caller shows a
message and the person can ask for a new code. Backends must not log the text of codes
in production (the console backend exists for development only).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

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


def send_sms(phone: str, text: str) -> None:
    get_backend().send(phone=phone, text=text)

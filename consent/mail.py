"""Mails to people about their own consent: the double opt-in link and consent receipts.

Receipts go out only when the person acted directly (privacy center, a link, an SMS
reply). Imports, API calls and store feeds carry millions of events that the person did
not just make in front of us; mailing those would be spam, not evidence.
"""

from __future__ import annotations

import json
import re
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from members.models import Member
from members.queries import canonical_member

from . import optin, receipts
from .models import NO_CHANNEL, Action, ConsentEvent, SourceType

# Sources where the event is the person's own act, just now, through us.
PERSON_SOURCES = frozenset(
    {
        SourceType.PRIVACY_CENTER.value,
        SourceType.DOUBLE_OPT_IN.value,
        SourceType.UNSUBSCRIBE_LINK.value,
        SourceType.SMS_KEYWORD.value,
    }
)
# A pending request is not consent yet: the confirmation mail is its acknowledgement and
# the receipt follows the confirmation.
NO_RECEIPT_ACTIONS = frozenset({Action.REQUESTED.value})
DEFAULT_COLOR = "#1f6feb"
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def language_for(member: Member) -> str:
    """The member's language if we offer it (``zh-CN`` → ``zh-hans``), else the default."""
    try:
        return translation.get_supported_language_variant(member.locale or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def brand_color(brand: Any) -> str:
    """The brand colour, for CSS. It lands in style attributes and blocks, where HTML
    escaping does not protect: only the validated form passes, whatever is in the row."""
    color = getattr(brand, "color", "") or ""
    return color if _COLOR_RE.match(color) else DEFAULT_COLOR


def _from_address(brand: Any) -> str:
    # The brand's name in front of our sending address: people recognise who writes.
    return formataddr((brand.name, settings.DEFAULT_FROM_EMAIL))


def _reply_to(brand: Any) -> list[str]:
    return [brand.privacy_email] if brand.privacy_email else []


def opt_in_message(event: ConsentEvent) -> EmailMultiAlternatives | None:
    """The confirmation mail for a ``requested`` event, in the person's language."""
    member = canonical_member(event.member)
    if not member.email:
        return None
    with translation.override(language_for(member)):
        context = {
            "brand": event.brand,
            "brand_color": brand_color(event.brand),
            "purpose": event.purpose,
            # Where the person agreed, when a store passed their grant on: they recognise it.
            "store": event.store if event.store_id else None,
            "notice": event.notice,
            "notice_url": receipts.policy_url(event.notice) if event.notice else "",
            "link": optin.opt_in_url(event.pk),
            "days": settings.DOUBLE_OPT_IN_MAX_AGE_DAYS,
        }
        subject = _("Please confirm: e-mails from %(brand)s") % {"brand": event.brand.name}
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("consent/email/opt_in.txt", context),
            from_email=_from_address(event.brand),
            to=[member.email],
            reply_to=_reply_to(event.brand),
        )
        message.attach_alternative(render_to_string("consent/email/opt_in.html", context), "text/html")
    return message


def wants_receipt(event: ConsentEvent) -> bool:
    return event.source_type in PERSON_SOURCES and event.action not in NO_RECEIPT_ACTIONS


def receipt_message(event: ConsentEvent) -> EmailMultiAlternatives | None:
    """The consent receipt of ``event``: readable HTML, plain text, and the Kantara JSON."""
    member = canonical_member(event.member)
    if not member.email:
        return None
    withdraw_url = None
    if event.action in (Action.GRANTED, Action.CONFIRMED):
        # Withdrawing must be as easy as giving (PIPL Art. 15, GDPR Art. 7(3)).
        channel = event.channel or NO_CHANNEL
        withdraw_url = optin.unsubscribe_url(member, event.brand, event.purpose, channel)
    with translation.override(language_for(member)):
        receipt = receipts.receipt_for(event)
        context = {"receipt": receipt, "event": event, "withdraw_url": withdraw_url}
        subject = _("Your consent receipt from %(brand)s") % {"brand": event.brand.name}
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("consent/email/receipt.txt", context),
            from_email=_from_address(event.brand),
            to=[member.email],
            reply_to=_reply_to(event.brand),
        )
        message.attach_alternative(receipts.render_receipt_html(event, withdraw_url=withdraw_url), "text/html")
    message.attach(
        receipts.receipt_filename(event),
        json.dumps(receipt, ensure_ascii=False, indent=2),
        "application/json",
    )
    return message

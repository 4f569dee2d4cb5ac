"""Mails and text messages the privacy center sends to people about their own account."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from consent.mail import brand_color

from .models import DataSubjectRequest


def _language(language: str) -> str:
    try:
        return translation.get_supported_language_variant(language or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def send_erasure_receipt(request_id: int, address: str, language: str) -> bool:
    request = DataSubjectRequest.objects.filter(pk=request_id, status=DataSubjectRequest.Status.COMPLETED).first()
    if request is None or not address:
        return False
    with translation.override(_language(language)):
        context = {"request": request, "outcome": request.outcome, "brand_color": brand_color(None)}
        subject = translation.gettext("Your data has been erased")
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("privacy/email/erased.txt", context),
            to=[address],
        )
    message.send()
    return True


UPDATE_EVENTS = ("completed", "extended", "refused")


def send_request_update(request_id: int, event: str) -> bool:
    """Tell the person what became of a request they made: done (with the officer's note),
    the deadline extended (new date and reason), or refused (with the reason). Sent to the
    member's e-mail in their language; nothing when they have none."""
    if event not in UPDATE_EVENTS:
        raise ValueError(f"unknown request update {event!r}")
    request = DataSubjectRequest.objects.select_related("member").filter(pk=request_id).first()
    if request is None or not request.member.email:
        return False
    with translation.override(_language(request.member.locale)):
        subjects = {
            "completed": translation.gettext("Your request #%(id)s is done"),
            "extended": translation.gettext("We need more time for your request #%(id)s"),
            "refused": translation.gettext("We cannot carry out your request #%(id)s"),
        }
        context = {"request": request, "event": event, "brand_color": brand_color(None)}
        message = EmailMultiAlternatives(
            subject=subjects[event] % {"id": request.pk},
            body=render_to_string("privacy/email/request_update.txt", context),
            to=[request.member.email],
        )
    message.send()
    return True

"""Mails and text messages the privacy center sends to people about their own account."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from ..mail import brand_color
from ..models import DataSubjectRequest


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

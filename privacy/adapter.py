"""django-allauth, fitted to the privacy center.

- Nobody signs up from scratch: brands' stores bring people in. A person whose phone or
  e-mail a store imported gets an account the moment they ask for a code
  (``forms.RequestCodeForm``); the code proves ownership and only then is the account
  linked to the member (``rights.claim_contact``).
- Phone numbers live on ``PrivacyAccount`` and go out through the SMS backend.
- Staff accounts never sign in here: a code sent to their inbox must not open the admin.
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.identities import RecordError, normalize_phone

from . import accounts, rights, sms
from .models import PrivacyAccount

logger = logging.getLogger(__name__)


class PhoneField(forms.CharField):
    """A phone in any usual format (``138 0013 8000``, ``+86-138…``); cleans to E.164."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Mobile number"))
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("widget", forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        if not value:
            return ""
        try:
            return normalize_phone(value)
        except RecordError:
            raise forms.ValidationError(_("Please enter a valid mobile number.")) from None


class PrivacyAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return reverse("privacy:overview")

    def pre_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse | None:
        if user.is_staff:
            messages.error(request, gettext("Staff accounts sign in to the admin site, not here."))
            return HttpResponseRedirect(reverse("account_login"))
        account = PrivacyAccount.objects.filter(user=user).only("closed_at").first()
        if account is not None and account.closed_at is not None:
            return HttpResponseRedirect(reverse("account_inactive"))
        return super().pre_login(request, user, **kwargs)

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        rights.claim_verified_contacts(user)
        return super().post_login(request, user, **kwargs)

    def add_message(
        self, request: HttpRequest, level: int, message_template: str | None = None, *args: Any, **kwargs: Any
    ) -> None:
        # "Signed in as p-5a34…" names the generated username, which means nothing to anyone.
        if message_template == "account/messages/logged_in.txt":
            return
        super().add_message(request, level, message_template, *args, **kwargs)

    # --- Phone numbers (allauth's phone interface) ---

    def phone_form_field(self, **kwargs: Any) -> Any:
        return PhoneField(**kwargs)

    def send_verification_code_sms(self, user: Any, phone: str, code: str, **kwargs: Any) -> None:
        text = gettext("Your privacy center code is %(code)s. It is valid for 10 minutes. Never share it.") % {
            "code": code
        }
        self._send_sms(phone, text)

    def _send_sms(self, phone: str, text: str) -> None:
        """A gateway refusal is not a crash: the person is told, and can ask again or use
        their e-mail address instead."""
        try:
            sms.send_sms(phone, text)
        except sms.SmsError:
            logger.warning("SMS gateway refused a message to …%s", phone[-4:], exc_info=True)
            request = context.request
            if request is not None:
                messages.error(
                    request,
                    gettext(
                        "We could not send the text message. Please try again in a minute, or use your e-mail address."
                    ),
                )

    def send_unknown_account_sms(self, phone: str, **kwargs: Any) -> None:
        # Same screen for everyone (no enumeration); only the phone's owner reads this.
        self._send_sms(
            phone,
            gettext(
                "Someone asked to sign in to the privacy center with this number, but no store has shared "
                "a profile with it. If you used another number or e-mail with a store, sign in with that."
            ),
        )

    def send_account_already_exists_sms(self, phone: str) -> None:
        self.send_unknown_account_sms(phone)

    def set_phone(self, user: Any, phone: str, verified: bool) -> None:
        accounts.set_phone(user, phone=phone, verified=verified)

    def get_phone(self, user: Any) -> tuple[str, bool] | None:
        account = PrivacyAccount.objects.filter(user=user).only("phone", "phone_verified").first()
        if account is None or not account.phone:
            return None
        return account.phone, account.phone_verified

    def set_phone_verified(self, user: Any, phone: str) -> None:
        """The code proved ``phone``: it becomes the account's phone (allauth's "change
        phone" stores it only now) and the member holding it is claimed."""
        rights.claim_phone(user=user, phone=phone)

    def get_user_by_phone(self, phone: str) -> Any:
        account = (
            PrivacyAccount.objects.select_related("user")
            .filter(phone=phone, user__is_active=True, closed_at__isnull=True)
            .first()
        )
        return account.user if account else None

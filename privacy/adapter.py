"""django-allauth, fitted to the privacy center.

- Nobody signs up from scratch: brands' stores bring people in. A person whose phone or
  e-mail a store imported gets an account the moment they ask for a code
  (``forms.RequestCodeForm``); the code proves ownership and only then is the account
  linked to the member (``rights.claim_contact``).
- Phone numbers live on ``PrivacyAccount`` and go out through the SMS backend. They are
  typed in the shopper's local format, read in the country or region chosen next to them.
- An account may have no e-mail address at all (a shopper a store knows by phone only):
  mandatory e-mail verification applies to accounts that have one (``privacy.stages.EmailVerificationStage``).
- Staff accounts never sign in here: a code sent to their inbox must not open the admin.
- Text messages go only to mobile numbers of ``SMS_REGIONS`` (``sms.refusal``), within the
  hourly budgets of ``limits.spend_sms_budget``; codes have their limits (``privacy.limits``).
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.identities import PHONE_REGIONS, RecordError, normalize_phone

from . import accounts, face, limits, rights, sms
from .models import PrivacyAccount

logger = logging.getLogger(__name__)


_REGION_CODES = {code for code, _label in PHONE_REGIONS}


def default_phone_region() -> str:
    region = settings.PHONE_DEFAULT_REGION
    return region if region in _REGION_CODES else "CN"


class PhoneWidget(forms.MultiWidget):
    """A country select next to the number: posts ``<name>_country`` and ``<name>``, so a
    form posted with the number alone (older pages, scripts) still works."""

    use_fieldset = False  # the label names the number input; the select has its own name

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        # Only the regions codes can be sent to (all of them if the setting names none).
        served = {code.upper() for code in settings.SMS_REGIONS}
        country = forms.Select(
            choices=[r for r in PHONE_REGIONS if r[0] in served] or PHONE_REGIONS,
            attrs={"aria-label": _("Country or region"), "style": "width:auto"},
        )
        # "tel", not "tel-national": browsers fill in the whole number with its "+code", which
        # is read as written whatever the select says; a national number filled in next to
        # a select autofill cannot set (its values are region codes) could be misread.
        number = forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"})
        super().__init__({"country": country, "": number}, attrs)

    def decompress(self, value: Any) -> list[Any]:
        return [default_phone_region(), value or ""]

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        # ids after the names ("id_phone_country", "id_phone"), not "_0"/"_1", so that
        # the field's <label for> points at the number.
        base = context["widget"]["attrs"].get("id")
        if base:
            for subwidget, suffix in zip(context["widget"]["subwidgets"], self.widgets_names, strict=True):
                subwidget["attrs"]["id"] = base + suffix
        if not context["widget"]["subwidgets"][0]["value"]:
            context["widget"]["subwidgets"][0]["value"] = [default_phone_region()]
        return context

    def id_for_label(self, id_: str) -> str:
        return id_

    def render(self, *args: Any, **kwargs: Any) -> str:
        return format_html('<span style="display:flex;gap:8px">{}</span>', super().render(*args, **kwargs))


class PhoneField(forms.Field):
    """A phone in the shopper's local format (``138 0013 8000``; ``8 917 123-45-67`` with
    Russia chosen) or with its code (``+86-138…``); cleans to E.164. allauth also cleans
    bare strings with it (telling a phone from a username at password sign-in): those are
    read in the default region."""

    widget = PhoneWidget
    default_error_messages = {
        "invalid": _("Please enter a valid mobile number."),
        "region": _("Please choose a country or region from the list."),
        # sms.refusal: the number is valid, but no code can be texted to it.
        "not_mobile": _(
            "We can only send codes to mobile numbers. This one is a landline or a service number: "
            "please enter a mobile number, or use your e-mail address."
        ),
        "region_not_served": _(
            "We cannot send text messages to numbers of this country or region. Please use your e-mail address."
        ),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Mobile number"))
        kwargs.pop("max_length", None)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        region, number = ("", value) if isinstance(value, str) else ([*(value or ()), "", ""][:2])
        number = (number or "").strip()
        if not number:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return ""
        region = region or default_phone_region()
        if region not in _REGION_CODES:
            raise forms.ValidationError(self.error_messages["region"], code="region")
        if len(number) > 32:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            phone = normalize_phone(number, region=region)
        except RecordError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        refused = sms.refusal(phone)
        if refused == "region":
            raise forms.ValidationError(self.error_messages["region_not_served"], code="region_not_served")
        if refused:
            raise forms.ValidationError(self.error_messages["not_mobile"], code="not_mobile")
        return phone


class PrivacyAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return reverse("privacy:overview")

    def get_login_stages(self) -> list[str]:
        return [
            "privacy.stages.EmailVerificationStage" if path == "allauth.account.stages.EmailVerificationStage" else path
            for path in super().get_login_stages()
        ]

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
        # A code that took its last wrong try: "try again later" would be wrong, only a
        # new code helps, and the page the person lands on says so (limits.mark_code_spent).
        if kwargs.get("message") == self.error_messages["too_many_login_attempts"] and limits.code_was_spent_now(
            request
        ):
            return
        super().add_message(request, level, message_template, *args, **kwargs)

    # --- Codes: a new one makes the old, spent one forgotten ---

    def generate_login_code(self) -> str:
        limits.forget_spent_code(context.request)
        return super().generate_login_code()

    def generate_phone_verification_code(self, *, user: Any, phone: str) -> str:
        limits.forget_spent_code(context.request)
        return super().generate_phone_verification_code(user=user, phone=phone)

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
        their e-mail address instead. Over an SMS budget, nothing is sent and the person
        gets the 429 page (``limits.TooManyRequests`` propagates)."""
        limits.spend_sms_budget(context.request, phone)
        try:
            sms.send_sms(phone, face.sms_prefix(context.request) + text)
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
        # The password form hands over what was typed ("138 0013 8000"); other forms E.164.
        try:
            phone = normalize_phone(phone)
        except RecordError:
            return None
        account = (
            PrivacyAccount.objects.select_related("user")
            # Staff never get a code here (see forms.RequestCodeForm.clean_email).
            .filter(phone=phone, user__is_active=True, user__is_staff=False, closed_at__isnull=True)
            .first()
        )
        return account.user if account else None

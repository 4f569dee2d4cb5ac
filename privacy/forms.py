"""Forms of the privacy center."""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account.forms import ConfirmLoginCodeForm as AllauthConfirmLoginCodeForm
from allauth.account.forms import RequestLoginCodeForm
from allauth.account.forms import VerifyPhoneForm as AllauthVerifyPhoneForm
from allauth.account.internal.flows.phone_verification import PHONE_VERIFICATION_SESSION_KEY
from allauth.core import context
from allauth.core.internal.cryptokit import compare_user_code
from allauth.core.internal.ratelimit import get_rates
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Preference
from members.models import Identity, IdentityKind

from . import accounts, limits


def _identity_exists(kind: str, value: str) -> bool:
    return Identity.objects.filter(kind=kind, value=value, member__status="active").exists()


class RequestCodeForm(RequestLoginCodeForm):
    """allauth's "mail me a code" form, plus: a person whose e-mail or phone a store
    imported gets an account here the first time they ask. The account is not linked to
    anyone until the code is entered (``rights.claim_contact``). The answer on screen is
    the same whether or not the address is known (no enumeration).

    Limits (``privacy.limits``): allauth's per IP and per number/address, then ours per
    account. Past one, the person gets the 429 page, not a form error: nothing they can
    correct in the form helps before the time is up."""

    def clean_email(self) -> str:
        email = _over_limit_is_429(super().clean_email)
        if email and getattr(self, "_user", None) is not None and self._user.is_staff:
            self._user = None  # staff never get a code here; they receive the "unknown" mail
        if email and getattr(self, "_user", None) is None and _identity_exists(IdentityKind.EMAIL, email.lower()):
            self._user = accounts.open_account_for_email(email.lower())
        if email:
            self._count_request(email)
        return email

    def clean_phone(self) -> str:
        phone = _over_limit_is_429(super().clean_phone)
        if phone and getattr(self, "_user", None) is None and _identity_exists(IdentityKind.PHONE, phone):
            self._user = accounts.open_account_for_phone(phone)
        if phone:
            self._count_request(phone)
        return phone

    def _count_request(self, recipient: str) -> None:
        user = getattr(self, "_user", None)
        limits.count_code_request(
            context.request, limits.Who.of(context.request, recipient=recipient, user_id=user.pk if user else None)
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors:
            limits.forget_spent_code(context.request)  # a new code is on its way
        return data


def _over_limit_is_429(clean: Any) -> Any:
    """allauth's own limit on asking for codes answers with a form error; make it the
    429 page like every other limit here."""
    try:
        return clean()
    except forms.ValidationError as error:
        if getattr(error, "code", None) == "too_many_login_attempts":
            longest = max(
                (rate.duration for rate in get_rates(app="allauth.account", action="request_login_code")), default=60
            )
            raise limits.TooManyRequests("code_requests", int(longest)) from None
        raise


class _CodeLimits:
    """For the forms a code is typed into: wrong codes are counted per IP, number/address
    and account across codes (``limits.PRIVACY_RATE_WRONG_CODES``), and past the limit even
    the right code is refused (429). The code's own last wrong try marks it spent, so the
    page the person lands on says to ask for a new one (allauth drops the code itself)."""

    expected_code: str | None
    cleaned_data: dict[str, Any]
    fields: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        # Codes are six digits (ALLAUTH_USER_CODE_FORMAT): phones show the number pad, and
        # iOS and Android offer the code from the SMS just received.
        self.fields["code"].widget.attrs.update(
            inputmode="numeric", autocomplete="one-time-code", pattern="[0-9]*", maxlength="6"
        )

    def _who(self) -> limits.Who:
        raise NotImplementedError

    def _process_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _max_attempts(self) -> int:
        raise NotImplementedError

    def clean_code(self) -> str:
        who = self._who()
        limits.refuse_if_too_many_wrong_codes(who)
        if not compare_user_code(actual=self.cleaned_data["code"], expected=self.expected_code or ""):
            limits.count_wrong_code(who)
            # allauth counts this try after the form answers; this one is the last.
            if self._process_state().get("failed_attempts", 0) + 1 >= self._max_attempts():
                limits.mark_code_spent(context.request)
        return super().clean_code()  # type: ignore[misc]


def _login_state() -> dict[str, Any]:
    # The pending sign-in's code process: allauth's confirm view hands it to the request.
    stage = getattr(context.request, "_login_stage", None)
    return stage.state if stage is not None else {}


class ConfirmLoginCodeForm(_CodeLimits, AllauthConfirmLoginCodeForm):
    def _max_attempts(self) -> int:
        return allauth_settings.LOGIN_BY_CODE_MAX_ATTEMPTS

    def _process_state(self) -> dict[str, Any]:
        return _login_state()

    def _who(self) -> limits.Who:
        state = self._process_state()
        recipient = state.get("phone") or state.get("email") or ""
        return limits.Who.of(context.request, recipient=recipient, user_id=state.get("user_id"))


class VerifyPhoneForm(_CodeLimits, AllauthVerifyPhoneForm):
    """The code sent to a new phone number (changing the account's phone, which may merge
    two profiles: ``rights.claim_phone``)."""

    def _max_attempts(self) -> int:
        return allauth_settings.PHONE_VERIFICATION_MAX_ATTEMPTS

    def _process_state(self) -> dict[str, Any]:
        request = context.request
        if getattr(request, "_login_stage", None) is not None:
            return _login_state()
        return request.session.get(PHONE_VERIFICATION_SESSION_KEY) or {}

    def _who(self) -> limits.Who:
        user = self.user
        return limits.Who.of(context.request, recipient=self.phone or "", user_id=user.pk if user else None)


class PlainForm(forms.Form):
    """No ":" after labels: they end in "?" or read as headings, in every language."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class CorrectionForm(PlainForm):
    details = forms.CharField(
        label=_("What is wrong, and what should it be?"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class DeletionForm(PlainForm):
    confirm = forms.BooleanField(
        label=_("I understand that my profile, contact details and memberships will be erased and cannot be restored.")
    )


def _choices(enum: Any) -> list[tuple[str, str]]:
    return list(enum.choices)


class PreferenceForm(PlainForm):
    # The help texts say what the contact decision (consent.queries.can_contact) does.
    channels = forms.MultipleChoiceField(
        label=_("How may we reach you?"),
        choices=_choices(Channel),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Tick none for no limit on channels: the brand may then use every channel you consented to. Only "
            "channels you consented to are listed; to add one, give your consent for it on the Consents page."
        ),
    )
    max_per_week = forms.IntegerField(
        label=_("Messages per week at most"),
        min_value=0,
        max_value=50,
        required=False,
        help_text=_("0 pauses all messages. Leave empty for the brand's usual limit."),
    )
    quiet_start = forms.TimeField(
        label=_("Quiet hours from"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    quiet_end = forms.TimeField(
        label=_("Quiet hours until"), required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    topics = forms.CharField(
        label=_("Topics you are interested in"),
        required=False,
        max_length=1000,
        help_text=_("Separate topics with commas, e.g. skincare, perfume."),
    )
    promotion_types = forms.MultipleChoiceField(
        label=_("Offers you like"),
        choices=_choices(Preference.PromotionType),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    language = forms.ChoiceField(label=_("Language of messages"), required=False)

    def __init__(self, *args: Any, offered: set[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As on this page")), *settings.LANGUAGES]
        if offered is not None:
            # The channels the person consented to, and any chosen before (so a choice
            # made while a consent stood can still be seen and removed).
            chosen = set(self.initial.get("channels") or [])
            self.fields["channels"].choices = [c for c in _choices(Channel) if c[0] in offered | chosen]
        # Quiet hours are read on TIME_ZONE's clock, the one these pages show.
        now = timezone.localtime(timezone.now(), timezone.get_default_timezone())
        self.fields["quiet_end"].help_text = _(
            "Nothing is sent from the first time until the second, overnight when the second is earlier "
            "(22:00 until 08:00). Times are on this site's clock: it is now %(time)s."
        ) % {"time": now.strftime("%H:%M")}

    def clean_topics(self) -> list[str]:
        raw = self.cleaned_data.get("topics") or ""
        topics = [t.strip() for t in raw.replace("，", ",").split(",") if t.strip()]
        if len(topics) > 50:
            raise forms.ValidationError(_("At most 50 topics."))
        if any(len(t) > 50 for t in topics):
            raise forms.ValidationError(_("Each topic can have at most 50 characters."))
        return topics

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if bool(data.get("quiet_start")) != bool(data.get("quiet_end")):
            raise forms.ValidationError(_("Give both the start and the end of your quiet hours, or neither."))
        return data

    @classmethod
    def initial_from(cls, preference: Preference | None) -> dict[str, Any]:
        if preference is None:
            return {}
        return {
            "channels": preference.channels,
            "max_per_week": preference.max_per_week,
            "quiet_start": preference.quiet_start,
            "quiet_end": preference.quiet_end,
            "topics": ", ".join(preference.topics),
            "promotion_types": preference.promotion_types,
            "language": preference.language,
        }

"""Forms of the privacy center."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import RequestLoginCodeForm
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Preference
from members.models import Identity, IdentityKind

from . import accounts


def _identity_exists(kind: str, value: str) -> bool:
    return Identity.objects.filter(kind=kind, value=value, member__status="active").exists()


class RequestCodeForm(RequestLoginCodeForm):
    """allauth's "mail me a code" form, plus: a person whose e-mail or phone a store
    imported gets an account here the first time they ask. The account is not linked to
    anyone until the code is entered (``rights.claim_contact``). The answer on screen is
    the same whether or not the address is known (no enumeration)."""

    def clean_email(self) -> str:
        email = super().clean_email()
        if email and getattr(self, "_user", None) is not None and self._user.is_staff:
            self._user = None  # staff never get a code here; they receive the "unknown" mail
        if email and getattr(self, "_user", None) is None and _identity_exists(IdentityKind.EMAIL, email.lower()):
            self._user = accounts.open_account_for_email(email.lower())
        return email

    def clean_phone(self) -> str:
        phone = super().clean_phone()
        if phone and getattr(self, "_user", None) is None and _identity_exists(IdentityKind.PHONE, phone):
            self._user = accounts.open_account_for_phone(phone)
        return phone


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
        help_text=_("Tick none for no limit on channels: the brand may then use every channel you consented to."),
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("As on this page")), *settings.LANGUAGES]
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

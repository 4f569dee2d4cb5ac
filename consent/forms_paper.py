"""The admin form for consent given on paper (``consent.admin.paper``): who signed, where
and when, which boxes they ticked, the notice version printed on the form, and the scan.
It only reads and checks; ``services.record_paper_consent`` writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.identities import PHONE_REGIONS, RecordError, normalize_phone
from members.models import Brand, Member, StoreMembership

from . import scans
from .evidence import person
from .models import NO_CHANNEL, Action, Channel, Notice, Purpose
from .services import PaperChoice

NOT_ON_FORM = ""
CHOICE_PREFIX = "choice__"


class BrandChoiceForm(forms.Form):
    """Staff of several brands first say whose form it is (GET ``?brand=``)."""

    brand = forms.ModelChoiceField(label=_("brand"), queryset=Brand.objects.none(), empty_label=None)

    def __init__(self, *args: Any, brands: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = brands


class PaperConsentForm(forms.Form):
    member = forms.IntegerField(
        label=_("member id"), required=False, min_value=1,
        help_text=_("A member of this brand. Or give the phone number written on the form instead."),
    )  # fmt: skip
    phone_region = forms.ChoiceField(label=_("phone country or region"), choices=PHONE_REGIONS, initial="CN")
    phone = forms.CharField(
        label=_("phone number on the form"), required=False, max_length=40,
        help_text=_("The person is found by it as from any store record, or becomes a member of the store."),
    )  # fmt: skip
    store_member_id = forms.CharField(
        label=_("member number on the form"), required=False, max_length=100,
        help_text=_("Left blank: the member's number at this store, else the phone number."),
    )  # fmt: skip
    store = forms.ModelChoiceField(label=_("store or counter where it was signed"), queryset=None)
    signed_on = forms.DateField(label=_("date signed"), widget=forms.DateInput(attrs={"type": "date"}))
    signed_at = forms.TimeField(
        label=_("time signed"), required=False, widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("If the form has one. Without it a grant counts from the start of that day and a withdrawal "
                    "from its end, so an unclear order never favours contacting the person."),
    )  # fmt: skip
    notice = forms.ModelChoiceField(
        label=_("notice version printed on the form"), queryset=None,
        help_text=_("The text the person read before signing; every choice points at it."),
    )  # fmt: skip
    by_guardian = forms.BooleanField(label=_("signed by a parent or guardian"), required=False)
    reference = forms.CharField(
        label=_("form reference"), required=False, max_length=100, help_text=_("The form's number, if printed on it.")
    )
    scan = forms.FileField(
        label=_("scan of the signed form"),
        help_text=_("PDF, JPEG or PNG, up to %(mb)s MB. Kept as evidence; its SHA-256 goes into the ledger."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/jpeg,image/png,.pdf,.jpg,.jpeg,.png"}),
    )

    PERSON_FIELDS = ("member", "phone_region", "phone", "store_member_id")
    FORM_FIELDS = ("store", "signed_on", "signed_at", "notice", "by_guardian", "reference")

    def __init__(self, *args: Any, brand: Brand, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.brand = brand
        self.fields["store"].queryset = brand.stores.order_by("name")
        self.fields["notice"].queryset = Notice.objects.filter(brand=brand).select_related("purpose")
        self.fields["notice"].label_from_instance = _notice_label
        self.fields["scan"].help_text = self.fields["scan"].help_text % {
            "mb": f"{settings.CONSENT_SCAN_MAX_BYTES / 1048576:g}"
        }
        self.choice_fields: dict[str, tuple[Purpose, str]] = {}
        for purpose in Purpose.objects.filter(brand=brand, is_active=True).order_by("code"):
            for channel in purpose.channels or [NO_CHANNEL]:
                name = f"{CHOICE_PREFIX}{purpose.pk}__{channel or 'none'}"
                label = f"{purpose.name} · {Channel(channel).label}" if channel else str(purpose.name)
                self.fields[name] = forms.ChoiceField(
                    label=label,
                    required=False,
                    choices=[
                        (NOT_ON_FORM, _("not on the form")),
                        (Action.GRANTED, _("granted")),
                        (Action.WITHDRAWN, _("withdrawn")),
                    ],
                )
                self.choice_fields[name] = (purpose, channel)

    def groups(self) -> list[tuple[Any, list[Any]]]:
        """The fields in the order of the page's sections."""
        return [
            (_("The person"), [self[name] for name in self.PERSON_FIELDS]),
            (_("The form"), [self[name] for name in self.FORM_FIELDS]),
            (_("The boxes on the form"), [self[name] for name in self.choice_fields]),
            (_("The scan"), [self["scan"]]),
        ]

    def clean_member(self) -> Member | None:
        member_id = self.cleaned_data.get("member")
        if member_id is None:
            return None
        member = Member.objects.select_related("merged_into").filter(pk=member_id).first()
        if member is not None and member.merged_into_id:
            member = member.merged_into
        of_brand = (
            member is not None
            and StoreMembership.objects.filter(member_id__in=person(member.pk), store__brand=self.brand).exists()
        )
        if not of_brand:
            raise forms.ValidationError(_("No member of this brand has this id."))
        if member.status == Member.Status.ERASED:
            raise forms.ValidationError(_("This person's data was erased at their request."))
        return member

    def clean_signed_on(self) -> dt.date:
        day = self.cleaned_data["signed_on"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("The form cannot be signed in the future."))
        return day

    def clean_scan(self) -> Any:
        upload = self.cleaned_data["scan"]
        try:
            self.scan = scans.inspect_scan(upload)
        except scans.ScanError as exc:
            raise forms.ValidationError(exc.message) from None
        return upload

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        member, number = data.get("member"), (data.get("phone") or "").strip()
        if "member" in self.errors:
            return data
        if (member is None) == (not number):
            self.add_error("phone", _("Give the person's phone number or their member id, not both."))
        elif number:
            try:
                data["phone"] = normalize_phone(number, region=data.get("phone_region") or "CN")
            except RecordError as exc:
                self.add_error("phone", exc.message)
        day, at = data.get("signed_on"), data.get("signed_at")
        future = timezone.now() + dt.timedelta(minutes=5)
        if day is not None and at is not None and timezone.make_aware(dt.datetime.combine(day, at)) > future:
            self.add_error("signed_at", _("The form cannot be signed in the future."))
        data["choices"] = [
            PaperChoice(purpose=purpose, channel=channel, action=data[name])
            for name, (purpose, channel) in self.choice_fields.items()
            if data.get(name)
        ]
        notice = data.get("notice")
        if notice is not None and notice.purpose_id is not None:
            others = sorted({str(c.purpose.name) for c in data["choices"] if c.purpose.pk != notice.purpose_id})
            if others:
                self.add_error(
                    "notice",
                    _("This notice is about another purpose than %(purposes)s: choose the one printed on the form.")
                    % {"purposes": ", ".join(others)},
                )
        if not data["choices"] and self.choice_fields:
            self.add_error(None, _("Mark at least one purpose as granted or withdrawn on the form."))
        if not self.choice_fields:
            self.add_error(None, _("This brand has no active purposes to record consent for."))
        return data


def _notice_label(notice: Notice) -> str:
    about = f" · {notice.purpose.name}" if notice.purpose_id else ""
    return f"{notice.title} v{notice.version} ({notice.locale}){about}"

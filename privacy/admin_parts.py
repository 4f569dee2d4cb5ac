"""List filters, action forms and the deadline badge of the data-request queue
(``privacy.admin``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from members.identities import RecordError, normalize_email, normalize_phone
from members.models import Brand, Identity, IdentityKind

from . import queries, services
from .models import DataSubjectRequest


class _ChoiceFilter(admin.SimpleListFilter):
    """A filter whose every choice narrows the queryset by one function of (request, qs)."""

    narrowing: dict[str, tuple[Any, Callable[[HttpRequest, QuerySet[Any]], QuerySet[Any]]]] = {}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(value, label) for value, (label, _narrow) in self.narrowing.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        chosen = self.narrowing.get(self.value() or "")
        return chosen[1](request, queryset) if chosen else queryset


class DeadlineFilter(_ChoiceFilter):
    title = _("deadline")
    parameter_name = "deadline"
    narrowing = {
        "open": (_("open"), lambda request, qs: queries.open_requests(qs)),
        "due_soon": (_("due soon"), lambda request, qs: queries.due_soon(qs)),
        "overdue": (_("overdue"), lambda request, qs: queries.overdue(qs)),
    }


class AssigneeFilter(_ChoiceFilter):
    title = _("assignee")
    parameter_name = "assignee"
    narrowing = {
        "me": (_("assigned to me"), lambda request, qs: qs.filter(assignee_id=request.user.pk)),
        "none": (_("not assigned"), lambda request, qs: qs.filter(assignee__isnull=True)),
    }


class BrandFilter(admin.SimpleListFilter):
    """Requests of people who are members of one of the brand's stores."""

    title = _("brand")
    parameter_name = "brand"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, Any]]:
        return [(str(pk), name) for pk, name in Brand.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(pk__in=queries.requests_of_brand(int(value)).values("pk"))
        return queryset


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assign to"),
        queryset=get_user_model().objects.none(),
        empty_label=_("Choose a staff member"),
        widget=forms.Select(attrs={"form": "dsr-assign"}),  # the change page's own form is read-only
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = services.staff_users()


class CompleteForm(forms.Form):
    note = forms.CharField(
        label=_("Note to the person (optional)"),
        required=False,
        max_length=services.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Shown in the privacy center and sent by e-mail, e.g. what was corrected."),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=services.MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Shown to the person in the privacy center and sent by e-mail, in your words."),
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give a reason: the person will read it."))
        return reason


ACTIONS: dict[str, dict[str, Any]] = {
    "complete": {"form": CompleteForm, "title": _("Complete request #%(id)s"), "button": _("Mark as completed")},
    "extend": {"form": ReasonForm, "title": _("Extend the deadline of request #%(id)s"), "button": _("Extend")},
    "refuse": {"form": ReasonForm, "title": _("Refuse request #%(id)s"), "button": _("Refuse the request")},
}


def deadline_badge(obj: DataSubjectRequest, now: dt.datetime | None = None) -> str:
    """The due date with a written badge (never colour alone) for overdue and due-soon."""
    now = now or timezone.now()
    day = timezone.localtime(obj.due_at).strftime("%Y-%m-%d")
    if obj.extended_at is not None:
        day = format_html('{} <span class="dsr-badge">{}</span>', day, _("Extended"))
    if not obj.is_open:
        return day
    if obj.due_at < now:
        return format_html('{} <strong class="dsr-badge dsr-overdue">⚠ {}</strong>', day, _("Overdue"))
    if obj.due_at < now + dt.timedelta(days=settings.DASHBOARD_DUE_SOON_DAYS):
        return format_html('{} <span class="dsr-badge dsr-soon">{}</span>', day, _("Due soon"))
    return day


class OfflineRequestForm(forms.Form):
    """A request made by phone, letter, at a store counter or by e-mail, recorded by staff."""

    person = forms.CharField(
        label=_("person"),
        max_length=100,
        help_text=_("Their member id, phone number or e-mail address."),
    )
    kind = forms.ChoiceField(label=_("kind"), choices=DataSubjectRequest.Kind.choices)
    via = forms.ChoiceField(
        label=_("received by"),
        choices=[(value, label) for value, label in DataSubjectRequest.Via.choices if value != "privacy_center"],
    )
    received_at = forms.DateTimeField(
        label=_("received at"), help_text=_("When the call, letter or visit came: the deadline counts from then.")
    )
    details = forms.CharField(
        label=_("details"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For a correction: what is wrong and what it should be. The letter's reference, if any."),
    )  # fmt: skip

    def __init__(self, *args: Any, members: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = members  # the people this staff member may see (brand scope)

    def clean_person(self) -> Any:
        text = self.cleaned_data["person"].strip()
        if text.isdigit() and len(text) < 11:
            found = self.members.filter(pk=int(text)).first()
        else:
            try:
                key = (IdentityKind.EMAIL, normalize_email(text)) if "@" in text else (
                    IdentityKind.PHONE, normalize_phone(text))  # fmt: skip
            except RecordError as exc:
                raise forms.ValidationError(exc.message) from None
            owners = Identity.objects.filter(kind=key[0], value=key[1]).values("member_id")
            found = self.members.filter(pk__in=owners).first()
        if found is None:
            raise forms.ValidationError(_("No member of your brands has this id, phone or e-mail."))
        return found

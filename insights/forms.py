"""The dashboard's brand and period chooser (a GET form)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cdp.admin_scope import scoped
from members.models import Brand

PRESETS = {"30": 30, "90": 90, "365": 365}
DEFAULT_PERIOD = "90"
# Bounds of a custom period: before 2000 there is no data, and a longer span only makes
# every figure slower without saying more.
EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2100, 12, 31)
MAX_DAYS = 3 * 366


class DashboardForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.none(), label=_("Brand"), empty_label=None)
    period = forms.ChoiceField(
        label=_("Period"),
        choices=[
            ("30", _("Last 30 days")),
            ("90", _("Last 90 days")),
            ("365", _("Last 365 days")),
            ("custom", _("Custom dates")),
        ],
    )
    start = forms.DateField(
        label=pgettext_lazy("dashboard period", "From"),
        required=False,
        validators=[MinValueValidator(EARLIEST), MaxValueValidator(LATEST)],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=_("To (inclusive)"),
        required=False,
        validators=[MinValueValidator(EARLIEST), MaxValueValidator(LATEST)],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, data: Any = None, *, brands: Any, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.fields["brand"].queryset = brands

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("period") != "custom":
            return cleaned
        start, end = cleaned.get("start"), cleaned.get("end")
        if "start" in self.errors or "end" in self.errors:
            return cleaned
        if start is None or end is None:
            raise forms.ValidationError(_("A custom period needs both a start and an end date."), code="incomplete")
        if start > end:
            raise forms.ValidationError(_("The start date is after the end date."), code="reversed")
        if (end - start).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("A period can be at most %(days)d days long.") % {"days": MAX_DAYS}, code="too_long"
            )
        return cleaned

    def period_bounds(self, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[since, until) as aware datetimes at local midnight: a preset of N days ends with
        today; a custom period runs from its start date to the end of its end date."""
        period = self.cleaned_data["period"]
        if period == "custom":
            first, last = self.cleaned_data["start"], self.cleaned_data["end"]
        else:
            last = today or timezone.localdate()
            first = last - dt.timedelta(days=PRESETS[period] - 1)

        def midnight(day: dt.date) -> dt.datetime:
            return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

        return midnight(first), midnight(last + dt.timedelta(days=1))

    def query_string(self) -> str:
        """The chosen brand and period as URL parameters (for the CSV links and refresh)."""
        query = QueryDict(mutable=True)
        query["brand"] = str(self.cleaned_data["brand"].pk)
        query["period"] = self.cleaned_data["period"]
        if self.cleaned_data["period"] == "custom":
            query["start"] = self.cleaned_data["start"].isoformat()
            query["end"] = self.cleaned_data["end"].isoformat()
        return query.urlencode()


def dashboard_form(params: Any, user: Any) -> DashboardForm | None:
    """The form bound to the request's parameters, defaults filled in for those missing:
    the first of ``user``'s brands by name and the last 90 days. None when they have none."""
    brands = scoped(Brand.objects.order_by("name", "pk"), user)
    data = {"period": DEFAULT_PERIOD}
    for key in ("brand", "period", "start", "end"):
        if key in params:
            data[key] = params[key]
    if "brand" not in data:
        first = brands.values_list("pk", flat=True).first()
        if first is None:
            return None
        data["brand"] = str(first)
    return DashboardForm(data, brands=brands)

"""The admin's "Onboard a brand" page (``consent.onboarding``): for staff who see every
brand and may add brands. Mounted at ``/admin/members/brand/onboard/`` (insights.admin_urls)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin_scope import staff_brand_ids
from members.models import Brand

from ..onboarding import ROLES, OnboardingError, onboard_brand, parse_stores

ROLE_FIELDS = {"marketers": "Marketer", "privacy_officers": "Privacy officer"}


def _staff_choice(label: Any) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username"),
        required=False,
        label=label,
        widget=forms.CheckboxSelectMultiple,
    )


class OnboardForm(forms.Form):
    code = forms.SlugField(label=_("code"), max_length=50, help_text=_("Short, lower case: lotus, northwind."))
    name = forms.CharField(label=_("name"), max_length=200)
    jurisdiction = forms.ChoiceField(label=_("jurisdiction"), choices=Brand.Jurisdiction.choices)
    legal_name = forms.CharField(label=_("legal name"), max_length=200, required=False)
    privacy_email = forms.EmailField(label=_("privacy contact e-mail"), required=False)
    stores = forms.CharField(
        label=_("stores"),
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "lotus-tmall,莲花天猫旗舰店,tmall\nlotus-sh-pos,上海专柜,pos,上海"}
        ),
        help_text=_("One store per line: code,name,platform[,city]. Platforms: %(platforms)s.")
        % {"platforms": "tmall, jd, douyin, wechat, xiaohongshu, pinduoduo, pos, website, app"},
    )
    marketers = _staff_choice(_("marketers"))
    privacy_officers = _staff_choice(_("privacy officers"))

    def clean_stores(self) -> Any:
        try:
            specs = parse_stores(self.cleaned_data["stores"])
        except OnboardingError as exc:
            raise forms.ValidationError(str(exc)) from None
        if not specs:
            raise forms.ValidationError(_("Give at least one store."))
        return specs


def onboard_view(request: HttpRequest) -> HttpResponse:
    if staff_brand_ids(request.user) is not None or not request.user.has_perm("members.add_brand"):
        raise PermissionDenied
    form = OnboardForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            staff = [(user.get_username(), role) for field, role in ROLE_FIELDS.items() for user in data[field]]
            try:
                with audit.acting_as(audit.user_actor(request.user, audit.client_ip(request))):
                    done = onboard_brand(
                        code=data["code"], name=data["name"], jurisdiction=data["jurisdiction"],
                        legal_name=data["legal_name"], privacy_email=data["privacy_email"], stores=data["stores"],
                        staff=staff,
                    )  # fmt: skip
            except OnboardingError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    _("%(brand)s is set up: %(stores)s store(s), %(notices)s notices to review. The checklist below "
                      "shows what is left before it goes live.")
                    % {"brand": done.brand.name, "stores": len(done.stores), "notices": len(done.notices)},
                )  # fmt: skip
                return HttpResponseRedirect(reverse("admin:members_brand_change", args=[done.brand.pk]))
        status = 400
    context = {
        **admin.site.each_context(request),
        "title": _("Onboard a brand"),
        "form": form,
        "opts": Brand._meta,
        "roles": ROLES,
    }
    return TemplateResponse(request, "admin/members/brand/onboard.html", context, status=status)

"""Purposes, and notices: published through ``services.publish_notice``, never edited."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import AuditedAdminMixin
from cdp.admin_scope import scoped
from cdp.csvutil import csv_response
from members.admin import BRAND_CHECKLIST
from members.models import Brand

from .. import reconsent, services
from ..models import (
    Channel,
    Notice,
    Purpose,
)
from ..services import ConsentError

# --- Purposes and notices ----------------------------------------------------------------


class PurposeForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=Channel.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None for purposes that contact nobody (analytics, say)."),
    )

    class Meta:
        model = Purpose
        fields = ["brand", "code", "name", "description", "channels", "separate_consent", "is_marketing", "is_active"]


@admin.register(Purpose)
class PurposeAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = PurposeForm
    list_display = ["brand", "code", "name", "channel_list", "separate_consent", "is_marketing", "is_active"]
    list_filter = ["brand", "is_marketing", "separate_consent", "is_active"]
    search_fields = ["code", "name"]
    list_select_related = ["brand"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Imports, the API and segments name purposes by brand and code: they never move.
        return ["created_at"] if obj is None else ["brand", "code", "created_at"]

    @admin.display(description=_("channels"))
    def channel_list(self, obj: Purpose) -> str:
        labels = dict(Channel.choices)
        return ", ".join(str(labels.get(c, c)) for c in obj.channels) or "—"


class _DryRun(Exception):
    pass


class NoticeForm(forms.ModelForm):
    locale = forms.ChoiceField(label=_("language"), choices=settings.LANGUAGES, initial=settings.LANGUAGE_CODE)
    url = forms.URLField(label=_("public URL"), required=False, assume_scheme="https")

    class Meta:
        model = Notice
        fields = ["brand", "kind", "purpose", "locale", "title", "body", "url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "purpose" in self.fields:  # absent on the read-only page of a published notice
            self.fields["purpose"].queryset = self.fields["purpose"].queryset.select_related("brand")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        # The service holds the publishing rules; run it in a savepoint that is always
        # rolled back, so its refusals become form errors instead of a server error.
        try:
            with transaction.atomic():
                publish(cleaned)
                raise _DryRun
        except _DryRun:
            pass
        except ConsentError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


def publish(data: dict[str, Any]) -> Notice:
    return services.publish_notice(
        brand=data["brand"],
        kind=data["kind"],
        purpose=data.get("purpose"),
        locale=data["locale"],
        title=data["title"],
        body=data["body"],
        url=data.get("url") or "",
    )


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    """Publishing is audited by the service (``notice.published``), so no audit mixin."""

    form = NoticeForm
    list_display = ["title", "brand", "kind", "purpose_code", "locale", "version", "published_at", "published_by"]
    list_filter = ["brand", "kind", "locale"]
    list_select_related = ["brand", "purpose"]
    search_fields = ["title"]
    actions = ["publish_new_version"]
    ADD_FIELDS = ["brand", "kind", "purpose", "locale", "title", "body", "url"]
    PUBLISHED = ["version", "sha256", "published_at", "published_by", "reconsent"]
    readonly_fields = ["reconsent"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # published means frozen: a change is a new version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # consent events point at it

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.ADD_FIELDS if obj is None else [*self.ADD_FIELDS, *self.PUBLISHED]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        source = request.GET.get("copy_of", "")
        notice = scoped(Notice.objects.all(), request.user).filter(pk=source).first() if source.isdigit() else None
        if notice is not None:
            initial.update({name: getattr(notice, name) for name in ("kind", "locale", "title", "body", "url")})
            initial.update(brand=notice.brand_id, purpose=notice.purpose_id)
        return initial

    def save_model(self, request: HttpRequest, obj: Notice, form: Any, change: bool) -> None:
        notice = publish(form.cleaned_data)
        # The admin goes on with ``obj`` (log entry, redirect): make it the published row.
        for field in Notice._meta.concrete_fields:
            setattr(obj, field.attname, getattr(notice, field.attname))
        obj._state.adding, obj._state.db = False, notice._state.db

    @admin.display(description=_("re-consent"))
    def reconsent(self, obj: Notice) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:consent_notice_reconsent", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Who consented under an earlier version"))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/reconsent/", wrap(self.reconsent_view), name="consent_notice_reconsent"),
            path("<int:pk>/reconsent.csv", wrap(self.reconsent_csv), name="consent_notice_reconsent_csv"),
            *super().get_urls(),
        ]

    def _notice_for_reconsent(self, request: HttpRequest, pk: int) -> Notice:
        if not request.user.has_perm("consent.view_consentstate"):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def reconsent_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Per version of the notice: the people whose standing consent rests on it and
        their share (the re-consent rate); those on versions before this one to ask again."""
        notice = self._notice_for_reconsent(request, pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Re-consent: %(notice)s") % {"notice": notice.title},
            "opts": self.model._meta,
            "original": notice,
            "versions": reconsent.by_version(notice),
            "older": reconsent.standing_before(notice).values("member_id").distinct().count(),
        }
        return TemplateResponse(request, "admin/consent/notice/reconsent.html", context)

    def reconsent_csv(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The consents to ask again, one row each: member, purpose, channel, the version
        they rest on and since when. Ids only, no contact points."""
        notice = self._notice_for_reconsent(request, pk)
        rows = (
            reconsent.standing_before(notice)
            .order_by("member_id", "purpose__code", "channel")
            .values_list("member_id", "purpose__code", "channel", "event__notice__version", "occurred_at")
        )
        audit.record("notice.reconsent_exported", notice, changes={"rows": rows.count()})
        header = ["member_id", "purpose", "channel", "notice_version", "consented_at"]
        return csv_response(f"reconsent-{notice.brand.code}-{notice.pk}.csv", header, rows.iterator())

    @admin.display(description=_("purpose"), ordering="purpose__code")
    def purpose_code(self, obj: Notice) -> str:
        return obj.purpose.code if obj.purpose_id else "—"

    @admin.action(description=_("Publish a new version of the selected notice"), permissions=["add"])
    def publish_new_version(self, request: HttpRequest, queryset: QuerySet[Notice]) -> HttpResponse | None:
        notices = list(queryset[:2])
        if len(notices) != 1:
            self.message_user(request, _("Select exactly one notice."), messages.ERROR)
            return None
        # The text travels by id, not in the URL: a policy's body is longer than a URL may be.
        url = reverse("admin:consent_notice_add") + "?" + urlencode({"copy_of": notices[0].pk})
        self.message_user(
            request,
            _("Edit the text and save to publish the next version; version %(v)s stays as it is.")
            % {"v": notices[0].version},
            messages.INFO,
        )
        return HttpResponseRedirect(url)


# --- The brand's go-live checklist --------------------------------------------------------


def notices_step(brand: Brand) -> tuple[str, bool, str]:
    """The membership agreement and every active purpose's notice published in each
    language of the privacy center."""
    from ..onboarding_texts import LOCALES

    published = set(Notice.objects.filter(brand=brand).values_list("kind", "purpose_id", "locale").distinct())
    needed = {(Notice.Kind.MEMBER_AGREEMENT, None, locale) for locale in LOCALES} | {
        (Notice.Kind.PURPOSE_NOTICE, pk, locale)
        for pk in Purpose.objects.filter(brand=brand, is_active=True).values_list("pk", flat=True)
        for locale in LOCALES
    }
    url = reverse("admin:consent_notice_changelist") + "?" + urlencode({"brand__id__exact": brand.pk})
    return str(_("Notices published in the four languages")), needed <= published, url


if notices_step not in BRAND_CHECKLIST:
    BRAND_CHECKLIST.append(notices_step)

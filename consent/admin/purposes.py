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
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationAdmin
from modeltranslation.utils import build_localized_fieldname

from cdp import audit
from cdp.admin import AuditedAdminMixin
from cdp.admin_scope import scoped
from cdp.csvutil import csv_response
from members.admin import BRAND_CHECKLIST
from members.models import Brand

from .. import reconsent, services, texts
from ..models import (
    Channel,
    Notice,
    NoticeDraft,
    Purpose,
)
from ..services import ConsentError

# --- Purposes and notices ----------------------------------------------------------------


def _languages(field: str) -> tuple[str, ...]:
    """A translated field's columns, one per language (consent/translation.py)."""
    return tuple(build_localized_fieldname(field, code) for code, _label in settings.LANGUAGES)


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
        fields = [
            "brand", "code", *_languages("name"), *_languages("description"), "channels", "separate_consent",
            "is_sale_or_sharing", "is_marketing", "is_active",
        ]  # fmt: skip
        widgets = {name: forms.Textarea(attrs={"rows": 6, "cols": 32}) for name in _languages("description")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any one language will do: the privacy center falls back in the brand's order.
        for name in (*_languages("name"), *_languages("description")):
            if name in self.fields:
                self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        names = [name for name in _languages("name") if name in self.fields]
        if names and not any((cleaned.get(name) or "").strip() for name in names):
            self.add_error(names[0], _("Give the purpose a name in at least one language."))
        return cleaned


@admin.register(Purpose)
class PurposeAdmin(AuditedAdminMixin, TranslationAdmin):
    """Name and description in the four languages side by side (one row each)."""

    form = PurposeForm
    fieldsets = [
        (None, {"fields": ["brand", "code"]}),
        (_("Name, in each language"), {"fields": [_languages("name")]}),
        (
            _("What it means for the person, in each language"),
            {
                "fields": [_languages("description")],
                "description": _(
                    "One paragraph: what saying yes means, and what changes when they say no. A language left "
                    "empty shows the brand's fallback language."
                ),
            },
        ),
        (None, {"fields": ["channels", "separate_consent", "is_sale_or_sharing", "is_marketing", "is_active"]}),
    ]
    list_display = [
        "brand",
        "code",
        "name",
        "languages",
        "channel_list",
        "separate_consent",
        "is_marketing",
        "is_active",
    ]
    list_filter = ["brand", "is_marketing", "separate_consent", "is_active"]
    search_fields = ["code", *_languages("name")]
    list_select_related = ["brand"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Imports, the API and segments name purposes by brand and code: they never move.
        return ["created_at"] if obj is None else ["brand", "code", "created_at"]

    @admin.display(description=_("channels"))
    def channel_list(self, obj: Purpose) -> str:
        labels = dict(Channel.choices)
        return ", ".join(str(labels.get(c, c)) for c in obj.channels) or "—"

    @admin.display(description=_("languages"))
    def languages(self, obj: Purpose) -> str:
        """The languages with both a name and a description."""
        names, descriptions = texts.translations(obj, "name"), texts.translations(obj, "description")
        return " · ".join(code for code in names if code in descriptions) or "—"


class _DryRun(Exception):
    pass


class NoticeForm(forms.ModelForm):
    locale = forms.ChoiceField(label=_("language"), choices=settings.LANGUAGES, initial=settings.LANGUAGE_CODE)
    url = forms.URLField(label=_("public URL"), required=False, assume_scheme="https")

    class Meta:
        model = Notice
        fields = ["brand", "kind", "purpose", "locale", "title", "body", "change_summary", "url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "purpose" in self.fields:  # absent on the read-only page of a published notice
            self.fields["purpose"].queryset = self.fields["purpose"].queryset.select_related("brand")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        previous = services.latest_notices(brand=cleaned["brand"], kind=cleaned["kind"], purpose=cleaned.get("purpose"))
        if cleaned["locale"] in previous and not (cleaned.get("change_summary") or "").strip():
            version = previous[cleaned["locale"]].version
            self.add_error("change_summary", _("Say what changed since version %(v)s.") % {"v": version})
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
        change_summary=data.get("change_summary") or "",
    )


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    """Publishing is audited by the service (``notice.published``), so no audit mixin."""

    form = NoticeForm
    list_display = ["title", "brand", "kind", "purpose_code", "locale", "version", "published_at", "published_by"]
    list_filter = ["brand", "kind", "locale"]
    list_select_related = ["brand", "purpose"]
    search_fields = ["title"]
    actions = ["draft_next_version", "publish_new_version"]
    ADD_FIELDS = ["brand", "kind", "purpose", "locale", "title", "body", "change_summary", "url"]
    PUBLISHED = ["version", "sha256", "published_at", "published_by", "languages", "reconsent"]
    readonly_fields = ["languages", "reconsent"]

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

    @admin.display(description=_("in every language"))
    def languages(self, obj: Notice) -> str:
        """The versions published now of this notice in each language, side by side."""
        if obj.pk is None:
            return "—"
        return published_table(brand=obj.brand_id, kind=obj.kind, purpose=obj.purpose_id, shown=obj.pk)

    @admin.action(description=_("Edit the next version in every language (draft)"), permissions=["add"])
    def draft_next_version(self, request: HttpRequest, queryset: QuerySet[Notice]) -> HttpResponse | None:
        notices = list(queryset.select_related("brand", "purpose")[:2])
        if len(notices) != 1:
            self.message_user(request, _("Select exactly one notice."), messages.ERROR)
            return None
        notice = notices[0]
        draft = services.start_notice_draft(brand=notice.brand, kind=notice.kind, purpose=notice.purpose)
        return HttpResponseRedirect(reverse("admin:consent_noticedraft_change", args=[draft.pk]))

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


def published_table(*, brand: int, kind: str, purpose: int | None, shown: int | None = None) -> str:
    """The versions of one notice published now, a column per language: title, version,
    what changed, its SHA-256 and a link; a language with none says so."""
    current = services.latest_notices(brand=brand, kind=kind, purpose=purpose)
    cells = []
    for code, _label in settings.LANGUAGES:
        notice = current.get(code)
        if notice is None:
            cells.append(format_html('<td data-language="{}"><em>{}</em></td>', code, _("not published")))
            continue
        url = reverse("admin:consent_notice_change", args=[notice.pk])
        cells.append(
            format_html(
                '<td data-language="{}" data-version="{}"><a href="{}">{}</a>{}<br>{}<br><small>{}</small>'
                "<br><code>{}…</code></td>",
                code, notice.version, url, notice.title, " ◀" if notice.pk == shown else "",
                _("version %(v)s, %(at)s") % {"v": notice.version, "at": notice.published_at.date()},
                notice.change_summary or "—", notice.sha256[:12],
            )
        )  # fmt: skip
    head = format_html_join("", "<th>{}</th>", ((label,) for _code, label in settings.LANGUAGES))
    return format_html(
        '<table class="notice-languages" style="table-layout:fixed;width:100%"><tr>{}</tr><tr>{}</tr></table>',
        head,
        format_html_join("", "{}", ((cell,) for cell in cells)),
    )


class NoticeDraftForm(forms.ModelForm):
    class Meta:
        model = NoticeDraft
        fields = [
            "brand", "kind", "purpose", *_languages("title"), *_languages("body"), *_languages("change_summary"),
        ]  # fmt: skip
        widgets = {
            **{name: forms.Textarea(attrs={"rows": 12, "cols": 32}) for name in _languages("body")},
            **{name: forms.Textarea(attrs={"rows": 3, "cols": 32}) for name in _languages("change_summary")},
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in (*_languages("title"), *_languages("body"), *_languages("change_summary")):
            if name in self.fields:
                self.fields[name].required = False
        if "purpose" in self.fields:
            self.fields["purpose"].queryset = self.fields["purpose"].queryset.select_related("brand")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors or "_publish" not in self.data:
            return cleaned
        brand, kind = cleaned.get("brand") or self.instance.brand, cleaned.get("kind") or self.instance.kind
        purpose = cleaned.get("purpose", self.instance.purpose)
        values = {
            code: tuple(
                (cleaned.get(build_localized_fieldname(name, code)) or "").strip()
                for name in ("title", "body", "change_summary")
            )
            for code, _label in settings.LANGUAGES
        }
        if kind == Notice.Kind.PURPOSE_NOTICE and purpose is None:
            self.add_error("purpose" if "purpose" in self.fields else None, _("A purpose notice needs a purpose."))
            return cleaned
        try:
            services.texts_to_publish(brand=brand, kind=kind, purpose=purpose, values=values)  # type: ignore[arg-type]
        except ConsentError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(NoticeDraft)
class NoticeDraftAdmin(AuditedAdminMixin, TranslationAdmin):
    """The next version of a notice in the four languages side by side. Saving keeps the
    draft; "Save and publish" publishes each changed language as its next version
    (``services.publish_notice_draft``) and deletes the draft. Drafts are never evidence."""

    form = NoticeDraftForm
    change_form_template = "admin/consent/noticedraft/change_form.html"
    list_display = ["__str__", "brand", "kind", "purpose", "updated_at", "updated_by"]
    list_filter = ["brand", "kind"]
    list_select_related = ["brand", "purpose"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [
            (
                None,
                {"fields": ["brand", "kind", "purpose"] if obj is None else ["brand", "kind", "purpose", "published"]},
            ),
            (_("Title, in each language"), {"fields": [_languages("title")]}),
            (_("Text, in each language"), {"fields": [_languages("body")]}),
            (
                _("What changed, in each language"),
                {
                    "fields": [_languages("change_summary")],
                    "description": _(
                        "Since the version published now: shown with the new version, never in its title. "
                        "A language left empty keeps its published version."
                    ),
                },
            ),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A draft belongs to one notice: to draft another, start another draft.
        return [] if obj is None else ["brand", "kind", "purpose", "published"]

    @admin.display(description=_("published now"))
    def published(self, obj: NoticeDraft) -> str:
        return published_table(brand=obj.brand_id, kind=obj.kind, purpose=obj.purpose_id)

    def save_model(self, request: HttpRequest, obj: NoticeDraft, form: Any, change: bool) -> None:
        obj.updated_by = audit.current_actor().label
        super().save_model(request, obj, form, change)

    def _publish(self, request: HttpRequest, obj: NoticeDraft) -> HttpResponse:
        brand = obj.brand_id
        try:
            published = services.publish_notice_draft(draft=obj)
        except ConsentError as exc:  # changed meanwhile (another officer published)
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:consent_noticedraft_change", args=[obj.pk]))
        versions = ", ".join(f"{n.locale} v{n.version}" for n in published)
        self.message_user(request, _("Published: %(versions)s.") % {"versions": versions}, messages.SUCCESS)
        url = reverse("admin:consent_notice_changelist") + "?" + urlencode({"brand__id__exact": brand})
        return HttpResponseRedirect(url)

    def response_add(
        self, request: HttpRequest, obj: NoticeDraft, post_url_continue: str | None = None
    ) -> HttpResponse:
        if "_publish" in request.POST:
            return self._publish(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: NoticeDraft) -> HttpResponse:
        if "_publish" in request.POST:
            return self._publish(request, obj)
        return super().response_change(request, obj)


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

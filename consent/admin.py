"""The consent part of the marketer site: purposes, notices, the ledger and its reports.

The ledger is evidence: viewable and exportable, never added, changed or deleted here
(the model and the database refuse too). Notices are published through
``services.publish_notice``, never edited. Evidence values (IP, user agent, …) are shown
only to staff with ``members.view_pii``, decided per request like the member pages.
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import AuditedAdminMixin, ReadOnlyAdminMixin
from cdp.csvutil import csv_response
from members.admin import MEMBER_SECTIONS, PiiAuditMixin
from members.identities import RecordError, normalize_email, normalize_phone
from members.masking import audit_pii_view, can_view_pii, mask_email, mask_phone
from members.models import Member

from . import evidence, services
from .models import (
    Channel,
    Checkpoint,
    ConsentEvent,
    ConsentState,
    DataUsage,
    LedgerVerification,
    Notice,
    Preference,
    PreferenceChange,
    Purpose,
    Suppression,
)
from .receipts import receipt_urls
from .services import ConsentError

TIMELINE_EVENTS = 50


class PurposeListFilter(admin.RelatedFieldListFilter):
    """``Purpose.__str__`` shows the brand code: fetch brands with the purposes (one query)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        return [(p.pk, str(p)) for p in Purpose.objects.select_related("brand").order_by("brand__code", "code")]


class CanonicalMemberFilter(admin.SimpleListFilter):
    """``?member=ID``: the person's events, including those of members merged into them.
    Shown only while used (the member page links here)."""

    title = _("member")
    parameter_name = "member"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"#{value}")] if value and value.isdigit() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(member_id__in=evidence.person(int(value)))
        return queryset


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


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
            self.fields["purpose"].queryset = Purpose.objects.select_related("brand")

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
    PUBLISHED = ["version", "sha256", "published_at", "published_by"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # published means frozen: a change is a new version

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # consent events point at it

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.ADD_FIELDS if obj is None else [*self.ADD_FIELDS, *self.PUBLISHED]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        source = request.GET.get("copy_of", "")
        notice = Notice.objects.filter(pk=source).first() if source.isdigit() else None
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


# --- The ledger ----------------------------------------------------------------------------


class _QuerysetOnlyChangeList(ChangeList):
    """The changelist's filtering, search and ordering without counting or paging: an
    export needs the queryset, and a count over a large ledger is the slow part."""

    def get_results(self, request: HttpRequest) -> None:
        self.result_list = self.queryset
        self.result_count = self.full_result_count = None
        self.show_full_result_count = False


@admin.register(ConsentEvent)
class ConsentEventAdmin(PiiAuditMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id", "member_link", "brand", "purpose_code", "channel", "action", "occurred_at", "recorded_at",
        "source_type", "source_ref",
    ]  # fmt: skip
    list_filter = [
        CanonicalMemberFilter,
        "brand",
        ("purpose", PurposeListFilter),
        "channel",
        "source_type",
        "action",
        ("occurred_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["member", "brand", "purpose__brand"]
    search_fields = ["=source_ref", "=external_id"]
    search_help_text = _("An exact source reference (store code, import job, user) or external event id")
    date_hierarchy = "occurred_at"
    sortable_by = ["id", "occurred_at", "recorded_at"]  # the indexed ones
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count per filter choice over the whole ledger
    list_per_page = 100
    actions = ["download_csv"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # evidence is never deleted
        return actions

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        evidence = "evidence_shown" if can_view_pii(request.user) else "evidence_masked"
        return [
            (None, {"fields": ["member_link", "brand", "purpose", "channel", "action", "by_guardian"]}),
            (_("When"), {"fields": ["occurred_at", "recorded_at"]}),
            (_("Source"), {"fields": ["source_type", "source_ref", "store", "external_id"]}),
            (_("Notice and evidence"), {"fields": ["notice_shown", evidence, "receipt"]}),
            (_("Hash chain"), {"fields": ["seq", "prev_hash", "hash"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def pii_on_page(self, obj: ConsentEvent) -> dict[str, Any] | None:
        # IP, user agent, the phone of an SMS reply: shown in full to staff with view_pii.
        return {"member": obj.member, "event": obj.pk} if obj.evidence else None

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConsentEvent]:
        # The detail page shows every relation. The changelist ignores list_select_related
        # once the queryset has a select_related, so this one serves both.
        return super().get_queryset(request).select_related(*self.list_select_related, "store", "notice")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        if getattr(request, "_consent_export", False):
            return _QuerysetOnlyChangeList
        return super().get_changelist(request, **kwargs)

    # --- Columns and detail fields -----------------------------------------------------
    @admin.display(description=_("member"), ordering="member_id")
    def member_link(self, obj: ConsentEvent) -> str:
        url = reverse("admin:members_member_change", args=[obj.member_id])
        return format_html('<a href="{}">{}</a>', url, obj.member)

    @admin.display(description=_("purpose"))
    def purpose_code(self, obj: ConsentEvent) -> str:
        return obj.purpose.code

    @admin.display(description=_("notice shown"))
    def notice_shown(self, obj: ConsentEvent) -> str:
        if obj.notice is None:
            return "—"
        url = reverse("admin:consent_notice_change", args=[obj.notice_id])
        return format_html('<a href="{}">{}</a><br>SHA-256 <code>{}</code>', url, obj.notice, obj.notice.sha256)

    @admin.display(description=_("evidence"))
    def evidence_shown(self, obj: ConsentEvent) -> str:
        return format_html("<pre>{}</pre>", _json(obj.evidence))

    @admin.display(description=_("evidence"))
    def evidence_masked(self, obj: ConsentEvent) -> str:
        return format_html("<pre>{}</pre>", _json(evidence.masked_evidence(obj.evidence)))

    @admin.display(description=_("receipt"))
    def receipt(self, obj: ConsentEvent) -> str:
        try:
            url = reverse("admin:consent_consentevent_receipt", args=[obj.pk])
        except NoReverseMatch:  # receipts are an optional module
            return "—"
        return format_html('<a href="{}">{}</a>', url, _("Show the receipt"))

    # --- Export and report ----------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        custom = [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="consent_consentevent_export"),
            *receipt_urls(self.admin_site),
        ]
        return custom + super().get_urls()

    def ledger_csv(self, request: HttpRequest, queryset: QuerySet[ConsentEvent]) -> HttpResponse:
        audit.record("consent.ledger_exported", changes={"query": dict(request.GET.lists())})
        evidence_values = can_view_pii(request.user)
        if evidence_values:
            members = queryset.order_by().values_list("member_id", flat=True).distinct()
            audit_pii_view("consent_consentevent_export", member_ids=members)
        rows = evidence.ledger_rows(queryset, evidence_values=evidence_values)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        return csv_response(f"consent-ledger-{stamp}.csv", evidence.LEDGER_CSV_HEADER, rows)

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The current changelist (filters, search, date, ordering) as a streamed CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        request._consent_export = True  # type: ignore[attr-defined]
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:consent_consentevent_changelist") + "?e=1")
        return self.ledger_csv(request, changelist.queryset)

    @admin.action(description=_("Download the selected events as CSV"), permissions=["view"])
    def download_csv(self, request: HttpRequest, queryset: QuerySet[ConsentEvent]) -> HttpResponse:
        return self.ledger_csv(request, queryset)


# --- The projection, checkpoints, preferences, suppressions, usage -----------------------


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["member", "brand", "purpose_code", "channel", "action", "occurred_at", "by_guardian", "event"]
    list_filter = ["brand", ("purpose", PurposeListFilter), "channel", "action", "by_guardian"]
    list_select_related = ["member", "brand", "purpose__brand", "event"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["member", "brand", "purpose", "channel", "action", "occurred_at", "by_guardian", "event"]

    @admin.display(description=_("purpose"), ordering="purpose__code")
    def purpose_code(self, obj: ConsentState) -> str:
        return obj.purpose.code


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "last_event_id", "event_count", "chain_count", "merkle_root"]
    fields = list_display


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "ok", "events_checked", "checkpoint_id", "first_error"]
    list_filter = ["ok"]
    fields = ["started_at", "finished_at", "ok", "events_checked", "checkpoint", "first_error"]


class PreferenceChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PreferenceChange
    extra = 0
    fields = readonly_fields = ["changed_at", "source_type", "source_ref", "changes"]


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Preferences change through ``services.update_preferences`` (privacy center, API)."""

    list_display = ["member", "brand", "channels", "max_per_week", "quiet_start", "quiet_end", "language", "updated_at"]
    list_filter = ["brand", "language"]
    list_select_related = ["member", "brand"]
    show_full_result_count = False
    inlines = [PreferenceChangeInline]
    fields = [
        "member", "brand", "channels", "max_per_week", "quiet_start", "quiet_end", "topics", "promotion_types",
        "language", "updated_at",
    ]  # fmt: skip


@admin.register(DataUsage)
class DataUsageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "member", "brand", "purpose_code", "channel", "context_type", "context_ref"]
    list_filter = ["brand", ("purpose", PurposeListFilter), "channel", "context_type"]
    list_select_related = ["member", "brand", "purpose"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["occurred_at", "member", "brand", "purpose", "channel", "context_type", "context_ref"]

    @admin.display(description=_("purpose"), ordering="purpose__code")
    def purpose_code(self, obj: DataUsage) -> str:
        return obj.purpose.code


def contact_point(channel: str, value: str) -> str:
    """Suppressions are matched against members' phone and e-mail, so they are stored in
    the same normal form (E.164, lower case); raises ``RecordError``."""
    if channel in (Channel.SMS, Channel.PHONE):
        return normalize_phone(value)
    if channel == Channel.EMAIL:
        return normalize_email(value)
    return value.strip()


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["brand", "channel", "value", "reason", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("channel") and cleaned.get("value"):
            try:
                cleaned["value"] = contact_point(cleaned["channel"], cleaned["value"])
            except RecordError as exc:
                self.add_error("value", exc.message)
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(PiiAuditMixin, AuditedAdminMixin, admin.ModelAdmin):
    """Added and removed, never edited: a wrong entry is removed and added again."""

    form = SuppressionForm
    list_filter = ["channel", "reason", "brand"]
    list_select_related = ["brand"]
    search_fields = ["=value"]
    search_help_text = _("The exact phone number (any format) or e-mail address")
    ADD_FIELDS = ["brand", "channel", "value", "reason", "note"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_list_display(self, request: HttpRequest) -> list[str]:
        value = "value" if can_view_pii(request.user) else "masked_value"
        return ["created_at", "channel", value, "brand", "reason", "note"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return self.ADD_FIELDS
        value = "value" if can_view_pii(request.user) else "masked_value"
        return ["brand", "channel", value, "reason", "note", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    # Contact points of no member in particular: the audit row names the entries shown.
    def pii_on_page(self, obj: Suppression) -> dict[str, Any]:
        return {"member_ids": [], "suppressions": [obj.pk]}

    def pii_in_list(self, results: list[Suppression]) -> dict[str, Any]:
        return {"member_ids": [], "suppressions": [s.pk for s in results]}

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> tuple[Any, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        values = {term}
        for channel in (Channel.SMS, Channel.EMAIL):
            with suppress(RecordError):
                values.add(contact_point(channel, term))
        return queryset.filter(value__in=values), False

    @admin.display(description=_("contact point"))
    def masked_value(self, obj: Suppression) -> str:
        return mask_email(obj.value) if "@" in obj.value else mask_phone(obj.value)


# --- The consent timeline on the member page ----------------------------------------------


def consent_timeline(member: Member, request: HttpRequest) -> str:
    """Current choices and the latest events of this person (one query, see
    ``evidence.member_timeline``), for staff who may read the ledger."""
    if not request.user.has_perm("consent.view_consentevent"):
        return ""
    context = {
        **evidence.member_timeline(member, limit=TIMELINE_EVENTS),
        "member": member,
        "limit": TIMELINE_EVENTS,
        "ledger_url": reverse("admin:consent_consentevent_changelist") + "?" + urlencode({"member": member.pk}),
    }
    return render_to_string("admin/consent/member_timeline.html", context, request=request)


if consent_timeline not in MEMBER_SECTIONS:  # a reload must not show it twice
    MEMBER_SECTIONS.append(consent_timeline)

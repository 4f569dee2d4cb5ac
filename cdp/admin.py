"""Admin of the core app, and the mixins every other admin builds on."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import audit, outbox
from .api_keys import issue_api_key, revoke_api_key
from .models import ApiKey, ApiKeyScope, AuditLog, OutboxMessage


class AuditedAdminMixin:
    """Mirror every admin add, change and delete into the audit log, with the IP."""

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record("admin.add", obj, changes={"message": message})
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        audit.record("admin.change", obj, changes={"message": message})
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit.record("admin.delete", obj)
        return super().log_deletions(request, queryset)  # type: ignore[misc]


class ReadOnlyAdminMixin:
    """Evidence and logs: viewable, never added, changed or deleted from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "actor_type", "action", "object_type", "object_repr", "ip_address"]
    list_filter = ["actor_type", "action", "object_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "object_id", "object_repr", "action"]
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False


class StoreOfBrandForm(forms.ModelForm):
    """A form with a ``brand`` and an optional ``store``: the store must be the brand's."""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        store, brand = data.get("store"), data.get("brand")
        if store is not None and brand is not None and store.brand_id != brand.pk:
            self.add_error("store", _("This store belongs to another brand."))
        return data


class ApiKeyForm(StoreOfBrandForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "brand", "store", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued here and shown once, in the message after saving; afterwards only
    their prefix is visible. A key is never edited: revoke it and issue a new one."""

    form = ApiKeyForm
    list_display = ["name", "prefix", "brand", "store", "scope_list", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["brand", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_at", "created_by", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:  # an issued key's brand, store and scopes are fixed
            return [*self.readonly_fields, "name", "brand", "store", "scopes", "expires_at"]
        return self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the audit log keeps naming the key

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return
        _key, raw = issue_api_key(obj)  # the admin's user is the current actor
        messages.warning(
            request,
            format_html(
                _(
                    "The new API key is <code style='user-select:all'>{}</code>. Copy it now: it is stored only "
                    "as a hash and will not be shown again."
                ),
                raw,
            ),
        )

    @admin.action(description=_("Revoke the selected keys"), permissions=["view"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm("cdp.change_apikey"):
            messages.error(request, _("You may not revoke API keys."))
            return
        count = sum(revoke_api_key(key) for key in queryset)
        messages.success(
            request, ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", count) % {"count": count}
        )


class OutboxStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("late", _("Waiting longer than a minute")),
            ("waiting", _("Waiting")),
            ("sent", _("Sent")),
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "late":
            return queryset & outbox.late()
        if self.value() == "waiting":
            return queryset.filter(sent_at__isnull=True)
        if self.value() == "sent":
            return queryset.filter(sent_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Side effects on their way to Celery (``cdp/outbox.py``). Rows are written and sent
    by the code; staff watch what waits and may send it again at once."""

    list_display = ["pk", "task", "state", "created_at", "waiting", "attempts", "available_at", "error", "sent_at"]
    # No task filter or date hierarchy: both would read every row kept (OUTBOX_KEEP_SENT_DAYS).
    list_filter = [OutboxStateFilter]
    search_fields = ["task"]
    show_full_result_count = False
    fields = [
        "task", "state", "arguments", "eta", "created_at", "available_at", "claimed_until", "attempts",
        "last_error", "sent_at",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["retry_now"]

    @admin.display(description=_("state"))
    def state(self, obj: OutboxMessage) -> str:
        if obj.sent_at is not None:
            return _("Sent")
        if obj.claimed_until is not None and obj.claimed_until > timezone.now():
            return _("Being sent")
        if obj.created_at < timezone.now() - outbox.LATE_AFTER:
            return _("Late")
        return _("Waiting")

    @admin.display(description=_("time waiting"))
    def waiting(self, obj: OutboxMessage) -> str:
        return "-" if obj.sent_at is not None else timesince(obj.created_at)

    @admin.display(description=_("last error"))
    def error(self, obj: OutboxMessage) -> str:
        return obj.last_error if len(obj.last_error) <= 80 else f"{obj.last_error[:79]}…"

    @admin.display(description=_("arguments"))
    def arguments(self, obj: OutboxMessage) -> str:
        """Only while the row waits: they are emptied once it is sent."""
        if obj.sent_at is not None:
            return "-"
        return json.dumps({"args": obj.args, "kwargs": obj.kwargs}, ensure_ascii=False)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        late = outbox.late().count()
        if late and request.method == "GET":
            messages.warning(
                request,
                ngettext(
                    "%(count)d side effect has been waiting longer than a minute: is the broker or the relay "
                    "(Celery beat and a worker) down? /healthz tells.",
                    "%(count)d side effects have been waiting longer than a minute: is the broker or the relay "
                    "(Celery beat and a worker) down? /healthz tells.",
                    late,
                )
                % {"count": late},
            )
        return super().changelist_view(request, extra_context)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("cdp.change_outboxmessage")

    @admin.action(description=_("Send the selected messages now"), permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.filter(sent_at__isnull=True).values_list("pk", flat=True))
        relayed = outbox.retry_now(ids)
        audit.record("outbox.retried", changes={"messages": ids, "sent": relayed.sent, "failed": relayed.failed})
        messages.success(
            request,
            ngettext("Sent %(count)d message.", "Sent %(count)d messages.", relayed.sent) % {"count": relayed.sent},
        )
        if relayed.broker_down:
            messages.warning(
                request,
                _("The broker is unreachable: the other messages wait and are retried automatically."),
            )

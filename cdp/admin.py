"""Admin of the core app, and the mixins every other admin builds on."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import audit
from .api_keys import issue_api_key, revoke_api_key
from .models import ApiKey, ApiKeyScope, AuditLog


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


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "brand", "store", "scopes", "expires_at"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        store, brand = data.get("store"), data.get("brand")
        if store is not None and brand is not None and store.brand_id != brand.pk:
            self.add_error("store", _("This store belongs to another brand."))
        return data


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

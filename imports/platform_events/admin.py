"""Admin pages: the stores' platform connections (the secret write-only) and the events
the platforms pushed (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin import ReadOnlyAdminMixin

from . import service
from .connections import connect_platform
from .models import PlatformConnection, PlatformEvent


class PlatformConnectionForm(forms.ModelForm):
    new_secret = forms.CharField(
        label=_("shared secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text=_(
            "The app secret (Tmall, Douyin) or token (WeChat) the platform shows for the brand's app. "
            "Leave empty to keep the current one; for the generic adapter, empty makes a new one, shown once."
        ),
    )

    class Meta:
        model = PlatformConnection
        fields = ["store", "adapter", "app_id", "agreement_purpose", "agreement_notice", "is_active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        adapter = data.get("adapter")
        # A new connection, or one moved to another platform's adapter, needs that
        # platform's secret; only the generic adapter makes its own.
        keeps_secret = self.instance.pk is not None and self.instance.adapter == adapter
        if not data.get("new_secret") and not keeps_secret and adapter != PlatformConnection.Adapter.GENERIC:
            self.add_error("new_secret", _("Give the secret the platform shows for the brand's app."))
        return data


@admin.register(PlatformConnection)
class PlatformConnectionAdmin(admin.ModelAdmin):
    form = PlatformConnectionForm
    list_display = ["store", "adapter", "app_id", "agreement_notice", "is_active", "created_at"]
    list_filter = ["adapter", "is_active", "store__brand"]
    list_select_related = ["store", "agreement_notice"]
    search_fields = ["store__code", "store__name"]
    readonly_fields = ["push_url", "created_at", "created_by"]

    @admin.display(description=_("push URL"))
    def push_url(self, obj: PlatformConnection) -> str:
        return f"/api/v1/platform-events/{obj.store.code}/" if obj.pk else "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # One connection per store: another store is another connection.
        return [*self.readonly_fields, "store"] if obj is not None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: PlatformConnection, form: Any, change: bool) -> None:
        """Through ``connect_platform``, as the command does (audited as the staff member)."""
        with audit.acting_as(audit.user_actor(request.user, audit.client_ip(request))):
            done = connect_platform(
                store=obj.store, adapter=obj.adapter, secret=form.cleaned_data.get("new_secret") or "",
                app_id=obj.app_id, purpose=obj.agreement_purpose, notice=obj.agreement_notice, is_active=obj.is_active,
            )  # fmt: skip
        # The admin goes on with ``obj`` (log entry, redirect): make it the saved row.
        for field in PlatformConnection._meta.concrete_fields:
            setattr(obj, field.attname, getattr(done.connection, field.attname))
        obj._state.adding, obj._state.db = False, done.connection._state.db
        if done.secret_made:
            messages.warning(
                request,
                _("Signing secret, shown only now: give it to the platform: %(secret)s") % {"secret": done.secret},
            )


@admin.register(PlatformEvent)
class PlatformEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "connection", "kind", "outcome", "detail", "member", "applied_at", "event_id"]
    list_filter = ["outcome", "kind", "connection__store__brand"]
    list_select_related = ["connection__store", "member"]
    search_fields = ["event_id"]
    date_hierarchy = "received_at"
    exclude = ["values"]  # phone numbers and names, until applied
    actions = ["apply_again"]

    def has_apply_again_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("imports.change_platformconnection")

    @admin.action(description=_("Apply the selected failed events again"), permissions=["apply_again"])
    def apply_again(self, request: HttpRequest, queryset: Any) -> None:
        with audit.acting_as(audit.user_actor(request.user, audit.client_ip(request))):
            count = service.retry_failed(list(queryset))
        messages.success(request, _("%(count)d failed event(s) put back in line to be applied.") % {"count": count})

"""Subscriptions and the delivery log, with every attempt and a "redeliver" action; consent
file feeds (created here, the secret shown once) and their files (counts, hashes, and
permission-checked, audited downloads)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp import audit
from cdp.admin import ReadOnlyAdminMixin, StoreOfBrandForm
from cdp.admin_scope import staff_brand_ids
from consent.models import ConsentEvent
from members.admin import BRAND_CHECKLIST
from members.masking import audit_pii_view

from . import propagation, services
from .feeds import services as feeds
from .models import ConsentFile, ConsentFileFeed, Delivery, DeliveryAttempt, Subscription


class SubscriptionForm(forms.ModelForm):
    """The API's URL rule (``services.check_url``: public https receivers only unless
    ``WEBHOOK_ALLOW_PRIVATE_URLS``). The admin shows subscriptions read-only today; the
    form holds the rule for the day it lets staff add or edit one."""

    url = forms.URLField(label=_("receiver URL"), max_length=500, assume_scheme="https")

    class Meta:
        model = Subscription
        fields = ["brand", "url", "events", "description", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            services.check_url(url)
        except services.WebhookError as exc:
            raise forms.ValidationError(exc.message, code="url") from None
        return url


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["url", "brand", "event_list", "is_active", "created_at", "created_by"]
    list_filter = ["brand", "is_active"]
    search_fields = ["url", "description"]
    exclude = ["secret"]

    @admin.display(description=_("events"))
    def event_list(self, obj: Subscription) -> str:
        return ", ".join(obj.events)


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "started_at", "duration_ms", "status_code", "error"]
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "pk", "event_type", "subscription", "member_id", "sequence", "status", "attempts", "last_status_code",
        "next_attempt_at", "created_at", "delivered_at",
    ]  # fmt: skip
    list_filter = ["status", "event_type", "subscription__brand"]
    search_fields = ["event_id", "member_id", "subscription__url"]
    list_select_related = ["subscription"]
    date_hierarchy = "created_at"
    readonly_fields = ["waiting_for"]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.withdrawals_view)
        return [path("withdrawals/", view, name="webhooks_delivery_withdrawals"), *super().get_urls()]

    def withdrawals_view(self, request: HttpRequest) -> HttpResponse:
        """Withdrawals of the last 30 days that some receiver has not acknowledged (or lost
        for good): for privacy officers, who answer for a withdrawal reaching everyone."""
        if not request.user.has_perm("consent.view_consentevent"):
            raise PermissionDenied
        rows = propagation.unconfirmed_withdrawals(brand_ids=staff_brand_ids(request.user))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Withdrawals not yet received everywhere"),
            "opts": self.model._meta,
            "rows": rows,
            "days": 30,
        }
        return TemplateResponse(request, "admin/webhooks/delivery/withdrawals.html", context)

    @admin.display(description=_("waiting for"))
    def waiting_for(self, obj: Delivery) -> str:
        """The earlier delivery about the same member that this one waits for, if any."""
        if obj.member_id is None or obj.status not in Delivery.UNFINISHED:
            return "-"
        pair = Delivery.objects.filter(subscription_id=obj.subscription_id, member_id=obj.member_id)
        earlier = (
            pair.filter(sequence__lt=obj.sequence, status__in=Delivery.UNFINISHED)
            .order_by("sequence")
            .values_list("pk", "sequence")
            .first()
        )
        return _("#%(pk)s (sequence %(sequence)s)") % {"pk": earlier[0], "sequence": earlier[1]} if earlier else "-"

    @admin.action(description=_("Redeliver the selected deliveries"), permissions=["view"])
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm("webhooks.change_delivery"):
            messages.error(request, _("You may not redeliver webhooks."))
            return
        count, late = services.redeliver(list(queryset))
        messages.success(
            request,
            ngettext("Queued %(count)d delivery again.", "Queued %(count)d deliveries again.", count)
            % {"count": count},
        )
        if late:
            messages.warning(
                request,
                ngettext(
                    "%(count)d of them is older than a delivery about the same member that was already delivered: "
                    "it arrives after that one, with its lower sequence number.",
                    "%(count)d of them are older than a delivery about the same member that was already delivered: "
                    "they arrive after it, with their lower sequence number.",
                    late,
                )
                % {"count": late},
            )


# --- Consent files -----------------------------------------------------------------------------


class ConsentFileFeedForm(StoreOfBrandForm):
    class Meta:
        model = ConsentFileFeed
        fields = ["brand", "name", "store", "is_active"]


@admin.register(ConsentFileFeed)
class ConsentFileFeedAdmin(admin.ModelAdmin):
    """A feed is created here and its signing secret shown once, in the message after
    saving. Afterwards only its name and whether it is active change; its brand, store and
    cursor are fixed. Feeds are paused, not deleted: their files' rows name them."""

    form = ConsentFileFeedForm
    list_display = ["name", "brand", "store", "is_active", "cursor", "created_at", "created_by"]
    list_filter = ["brand", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["cursor", "created_at", "created_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return ["brand", "store", *self.readonly_fields]
        return self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ConsentFileFeed, form: Any, change: bool) -> None:
        if change:
            feeds.update_feed(obj, name=obj.name, is_active=obj.is_active)
            return
        feed, secret = feeds.create_feed(brand=obj.brand, name=obj.name, store=obj.store)
        if not obj.is_active:
            feeds.update_feed(feed, name=feed.name, is_active=False)
        obj.pk, obj.secret, obj.created_by, obj.created_at = feed.pk, feed.secret, feed.created_by, feed.created_at
        messages.warning(
            request,
            format_html(
                _(
                    "The feed's signing secret is <code style='user-select:all'>{}</code>. Give it to the receiver "
                    "now: it will not be shown again."
                ),
                secret,
            ),
        )


@admin.register(ConsentFile)
class ConsentFileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__", "feed", "created_at", "events", "count_list", "first_event_id", "last_event_id", "deleted_at",
        "downloads",
    ]  # fmt: skip
    list_filter = ["feed__brand", "feed"]
    list_select_related = ["feed"]
    date_hierarchy = "created_at"
    fields = [
        "feed", "number", "directory", "created_at", "after_event_id", "up_to_event_id", "events", "count_list",
        "first_event_id", "last_event_id", "hash_list", "downloads", "deleted_at",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("counts by action"))
    def count_list(self, obj: ConsentFile) -> str:
        return ", ".join(f"{action}: {n:,}" for action, n in obj.counts.items()) or "-"

    @admin.display(description=_("SHA-256"))
    def hash_list(self, obj: ConsentFile) -> str:
        return format_html_join(
            "", "<div><code>{}</code> {} ({} B)</div>", ((i["sha256"], n, i["bytes"]) for n, i in obj.hashes.items())
        )

    @admin.display(description=_("files"))
    def downloads(self, obj: ConsentFile) -> str:
        if obj.deleted_at is not None:
            return _("deleted")
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            ((reverse("admin:webhooks_consentfile_download", args=[obj.pk, n]), n.rsplit("-", 1)[-1])
             for n in feeds.file_names(obj)),
        )  # fmt: skip

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:pk>/download/<str:name>",
                self.admin_site.admin_view(self.download_view),
                name="webhooks_consentfile_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, pk: int, name: str) -> HttpResponse:
        """One file of a set. Needs ``webhooks.download_consentfile`` (the files carry store
        member ids); every download is audited, the data files also as ``pii.viewed``."""
        if not request.user.has_perm("webhooks.download_consentfile"):
            raise PermissionDenied
        consent_file = self.get_queryset(request).select_related("feed").filter(pk=pk, deleted_at__isnull=True).first()
        where = feeds.file_path(consent_file, name) if consent_file is not None else None
        if where is None or not where.is_file():
            raise Http404
        audit.record("consent_file.downloaded", consent_file, changes={"file": name, "events": consent_file.events})
        if name.endswith((".csv", ".jsonl")):
            audit_pii_view("webhooks_consentfile_download", member_ids=_members_in(consent_file), file=consent_file.pk)
        response = FileResponse(where.open("rb"), as_attachment=True, filename=name)
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response


def _members_in(consent_file: ConsentFile) -> Any:
    """The people whose events the file's range holds (before the feed's store filter)."""
    return (
        ConsentEvent.objects.filter(
            brand_id=consent_file.feed.brand_id,
            pk__gt=consent_file.after_event_id,
            pk__lte=consent_file.up_to_event_id,
        )
        .annotate(person=Coalesce("member__merged_into_id", "member_id"))
        .values_list("person", flat=True)
        .distinct()
    )


def receivers_step(brand: Any) -> tuple[str, bool, str]:
    """Withdrawals reach the brand's other systems: a webhook or a daily consent file."""
    done = (
        Subscription.objects.filter(brand=brand, is_active=True).exists()
        or ConsentFileFeed.objects.filter(brand=brand, is_active=True).exists()
    )
    return str(_("A webhook or consent file set up")), done, reverse("admin:webhooks_subscription_changelist")


if receivers_step not in BRAND_CHECKLIST:
    BRAND_CHECKLIST.append(receivers_step)

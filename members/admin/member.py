"""The member page: the unified profile, masked or audited per request, its identities
and memberships, its orders and merge history, the sections other apps add, search by any
identifier, and unmerging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from cdp.admin import AuditedAdminMixin, ReadOnlyAdminMixin
from cdp.admin_scope import scoped, staff_brand_ids

from .. import services
from ..brand_view import brand_order_metrics, brand_profile
from ..masking import can_view_pii, mask_attributes, mask_email, mask_identity, mask_phone
from ..models import Brand, Identity, LifecycleStage, Member, MergeEvent, NeverMerge, Platform, StoreMembership
from ..queries import identities_matching, members_matching
from .merges import unmerge_each
from .pii import PiiAuditMixin

RECENT_ORDERS = 20

# Sections other apps add to the member page (the consent timeline, …). Apps that build
# on members register here, so members never imports them. Each gets the member and the
# request (for permission checks) and returns safe HTML, or "" to show nothing.
MEMBER_SECTIONS: list[Callable[[Member, HttpRequest], str]] = []


def _stage_label(stage: str | None) -> str:
    return str(LifecycleStage(stage).label) if stage in LifecycleStage.values else "—"


class _IdentityInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Identity
    extra = 0
    fields = readonly_fields = ["kind", "shown_value", "store", "created_at"]
    ordering = ["kind", "value"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Identity]:
        return super().get_queryset(request).select_related("store")


class IdentityInline(_IdentityInline):
    @admin.display(description=_("value"))
    def shown_value(self, obj: Identity) -> str:
        return obj.shown_value


class MaskedIdentityInline(_IdentityInline):
    template = "admin/members/member/tabular_masked.html"  # the stock one prints str(identity) in full

    @admin.display(description=_("value"))
    def shown_value(self, obj: Identity) -> str:
        return mask_identity(obj.kind, obj.shown_value)


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StoreMembership
    extra = 0
    fields = readonly_fields = ["store", "platform", "store_member_id", "joined_at", "tier", "points"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[StoreMembership]:
        return super().get_queryset(request).select_related("store")

    @admin.display(description=_("platform"))
    def platform(self, obj: StoreMembership) -> str:
        return obj.store.get_platform_display()


class PlatformFilter(admin.SimpleListFilter):
    title = _("platform")
    parameter_name = "platform"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(Platform.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> QuerySet[Member]:
        if self.value():
            # A membership on that platform at the staff member's brands only.
            ids = scoped(StoreMembership.objects.filter(store__platform=self.value()), request.user)
            return queryset.filter(pk__in=ids.values("member_id"))
        return queryset


class BrandFilter(admin.SimpleListFilter):
    title = _("brand")
    parameter_name = "brand"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, Any]]:
        return list(scoped(Brand.objects.all(), request.user).values_list("pk", "name"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> QuerySet[Member]:
        if self.value():
            ids = StoreMembership.objects.filter(store__brand_id=self.value()).values("member_id")
            return queryset.filter(pk__in=ids)
        return queryset


class StoreCountFilter(admin.SimpleListFilter):
    title = _("stores")
    parameter_name = "stores"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("one store")), ("2", _("two or more stores"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Member]) -> QuerySet[Member]:
        if self.value() == "1":
            return queryset.filter(_stores=1)
        if self.value() == "2":
            return queryset.filter(_stores__gte=2)
        return queryset


@admin.register(Member)
class MemberAdmin(PiiAuditMixin, AuditedAdminMixin, admin.ModelAdmin):
    list_display_links = ["id", "name"]
    list_filter = [
        "lifecycle_stage",
        "status",
        BrandFilter,
        PlatformFilter,
        StoreCountFilter,
        "gender",
        "province",
    ]
    search_fields = ["name"]
    search_help_text = _("Name, phone in any format, e-mail, WeChat unionid or store member id")
    list_per_page = 50
    show_full_result_count = False
    actions = ["undo_last_merge"]
    PROFILE = ["status", "merged_into", "name", "gender", "birth_date", "province", "city", "locale"]
    METRICS = [
        "lifecycle_stage",
        "order_count",
        "total_spent",
        "first_order_at",
        "last_order_at",
        "metrics_refreshed_at",
    ]
    HISTORY = ["recent_orders", "merge_history", "extra_sections", "shown_attributes", "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Members come from stores, imports and the API through identity resolution.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Erasure is a data-subject request that keeps the consent ledger; never a delete.
        return False

    # ⚑ Brand wall: staff of some brands (``staff_brand_ids`` not None) see the person as
    # their brands' stores gave them (``members.brand_view``): the merged values mix what
    # every brand collected, so they are neither listed, filtered, searched nor shown.
    BRAND_VIEW_LIST = ["id", "brand_name", "brand_city", "store_count", "status"]
    BRAND_VIEW_FIELDS = ["status", "brand_profile_shown", "brand_metrics_shown", "recent_orders", "merge_history",
                         "extra_sections", "created_at", "updated_at"]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        queryset = super().get_queryset(request)
        brands = staff_brand_ids(request.user)
        if brands is None:
            return queryset.annotate(_stores=Count("memberships"))
        theirs = StoreMembership.objects.filter(member=OuterRef("pk"), store__brand_id__in=brands).order_by()

        def given(key: str) -> Subquery:  # the value the brand's most recently observed store gave
            given_at = theirs.exclude(**{f"profile__{key}__isnull": True}).exclude(**{f"profile__{key}": ""})
            values = given_at.annotate(v=KT(f"profile__{key}"))
            return Subquery(values.order_by("-profile_observed_at", "-pk").values("v")[:1])

        stores = Subquery(theirs.values("member_id").annotate(n=Count("pk")).values("n")[:1])
        return queryset.annotate(_stores=Coalesce(stores, 0), _brand_name=given("name"), _brand_city=given("city"))

    def get_list_display_links(self, request: HttpRequest, list_display: Any) -> list[str]:
        return ["id", "name"] if staff_brand_ids(request.user) is None else ["id", "brand_name"]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        if staff_brand_ids(request.user) is None:
            return self.list_filter
        return ["status", BrandFilter, PlatformFilter, StoreCountFilter]

    @admin.display(description=_("name"), ordering="_brand_name")
    def brand_name(self, obj: Member) -> str:
        return obj._brand_name or "—"

    @admin.display(description=_("city"), ordering="_brand_city")
    def brand_city(self, obj: Member) -> str:
        return obj._brand_city or "—"

    @admin.display(description=_("profile as your brands' stores gave it"))
    def brand_profile_shown(self, obj: Member) -> str:
        request = getattr(obj, "_admin_request", None)
        if request is None:
            return "—"
        profile = brand_profile(scoped(obj.memberships.all(), request.user))
        if not can_view_pii(request.user):
            profile.update(phone=mask_phone(profile["phone"]), email=mask_email(profile["email"]))
        rows = ((Member._meta.get_field(name).verbose_name, profile[name] or "—") for name in Member.PROFILE_FIELDS)
        return format_html(
            "<table><tbody>{}</tbody></table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description=_("orders and lifecycle at your brands"))
    def brand_metrics_shown(self, obj: Member) -> str:
        request = getattr(obj, "_admin_request", None)
        brands = staff_brand_ids(request.user) if request is not None else None
        if not brands:
            return "—"
        rows = []
        for brand in Brand.objects.filter(pk__in=brands).order_by("name"):
            found = brand_order_metrics([obj.pk], brand.pk).get(obj.pk) or {}
            rows.append((brand.name, found.get("order_count", 0), found.get("total_spent", 0),
                         found.get("last_order_at") and timezone.localtime(found["last_order_at"]).strftime("%Y-%m-%d"),
                         _stage_label(found.get("lifecycle_stage"))))  # fmt: skip
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("brand"), _("orders"), _("total spent"), _("last order"), _("lifecycle stage"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((b, n, t, last or "—", stage) for b, n, t, last, stage in rows)),
        )  # fmt: skip

    # --- PII per request -------------------------------------------------------------
    def get_list_display(self, request: HttpRequest) -> list[str]:
        if staff_brand_ids(request.user) is not None:
            return self.BRAND_VIEW_LIST
        contact = ["phone", "email"] if can_view_pii(request.user) else ["masked_phone", "masked_email"]
        return [
            "id",
            "name",
            *contact,
            "city",
            "lifecycle_stage",
            "store_count",
            "order_count",
            "total_spent",
            "status",
        ]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[tuple[Any, dict[str, Any]]]:
        if staff_brand_ids(request.user) is not None:
            return [(_("Profile"), {"fields": self.BRAND_VIEW_FIELDS})]
        contact = ["phone", "email"] if can_view_pii(request.user) else ["masked_phone", "masked_email"]
        return [
            (_("Profile"), {"fields": [*self.PROFILE[:3], *contact, *self.PROFILE[3:]]}),
            (_("Orders and lifecycle"), {"fields": self.METRICS}),
            (_("History"), {"fields": self.HISTORY}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if staff_brand_ids(request.user) is not None:
            return self.BRAND_VIEW_FIELDS
        # Contact points are identities: they change through resolution, not a form.
        return ["status", "merged_into", "phone", "email", "masked_phone", "masked_email", *self.METRICS, *self.HISTORY]

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return [IdentityInline if can_view_pii(request.user) else MaskedIdentityInline, MembershipInline]

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: Member) -> str:
        return mask_phone(obj.phone)

    @admin.display(description=_("e-mail"))
    def masked_email(self, obj: Member) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("attributes"))
    def shown_attributes(self, obj: Member) -> str:
        """Free attributes (unknown file columns, API extras) can hold anything a store
        sent, phone numbers included: masked unless the page is an audited unmasked view."""
        attributes = obj.attributes or {}
        if not attributes:
            return "—"
        if not getattr(obj, "_show_pii", False):  # set per request for staff with view_pii
            attributes = mask_attributes(attributes)
        return format_html_join("<br>", "{}: {}", ((key, value) for key, value in attributes.items()))

    @admin.display(description=_("stores"), ordering="_stores")
    def store_count(self, obj: Member) -> int:
        return obj._stores

    # --- Every unmasked view is audited (pii.viewed), one row per page ------------------
    def pii_on_page(self, obj: Member) -> dict[str, Any]:
        return {"member": obj}  # the profile and the identities inline

    def pii_in_list(self, results: list[Member]) -> dict[str, Any]:
        return {"member_ids": [m.pk for m in results]}

    # --- Search: any identifier, any phone format -------------------------------------
    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Member], search_term: str
    ) -> tuple[QuerySet[Member], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        brands = staff_brand_ids(request.user)
        if brands is None:
            matches = members_matching(term).values("pk")
            return queryset.filter(Q(name__icontains=term) | Q(pk__in=matches)), False
        # Only what the staff member's brands hold: a name their stores gave, an identifier
        # a store of theirs gave (or the person's own); never another brand's records.
        named = StoreMembership.objects.filter(store__brand_id__in=brands, profile__name__icontains=term)
        identified = scoped(identities_matching(term), request.user)
        return queryset.filter(Q(pk__in=named.values("member_id")) | Q(pk__in=identified.values("member_id"))), False

    # --- History sections ----------------------------------------------------------------
    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Member | None:
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # Readonly fields get only the object; MEMBER_SECTIONS need the request. The
            # object lives for this request only, unlike the admin instance (shared).
            obj._admin_request = request
        return obj

    @admin.display(description=_("related records"))
    def extra_sections(self, obj: Member) -> str:
        request = getattr(obj, "_admin_request", None)
        parts = [section(obj, request) for section in MEMBER_SECTIONS] if request is not None else []
        return format_html_join("", "{}", ((part,) for part in parts if part)) or "—"

    @admin.display(description=_("recent orders"))
    def recent_orders(self, obj: Member) -> str:
        request = getattr(obj, "_admin_request", None)
        if request is None:
            return "—"
        orders = list(scoped(obj.orders.select_related("store"), request.user).order_by("-placed_at")[:RECENT_ORDERS])
        if not orders:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(o.placed_at).strftime("%Y-%m-%d %H:%M"),
                    o.store.name,
                    o.external_id,
                    o.amount,
                    ", ".join(o.categories),
                )
                for o in orders
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("placed"),
            _("store"),
            _("order id"),
            _("amount"),
            _("categories"),
            rows,
        )

    @admin.display(description=_("merge history"))
    def merge_history(self, obj: Member) -> str:
        events = list(MergeEvent.objects.filter(Q(survivor=obj) | Q(absorbed=obj)).order_by("-created_at", "-pk"))
        if not events:
            return "—"
        rows = []
        for event in events:
            if not event.is_merge:
                state = _("kept apart: never-merge pair")
            elif event.undone_at:
                # format_html escapes its arguments first: the date is text by then.
                when = f"{timezone.localtime(event.undone_at):%Y-%m-%d %H:%M}"
                state = format_html("{} {} ({})", _("undone"), when, event.undone_by)
            elif event.survivor_id == obj.pk:
                url = reverse("admin:members_member_unmerge", args=[obj.pk, event.pk])
                state = format_html('<a class="button" href="{}">{}</a>', url, _("Unmerge…"))
            else:
                state = ""
            rows.append(
                (
                    f"{timezone.localtime(event.created_at):%Y-%m-%d %H:%M}",
                    f"#{event.absorbed_id} {'→' if event.is_merge else '✕'} #{event.survivor_id}",
                    event.get_rule_display(),
                    sum(len(v) for v in event.moved.values()),
                    state,
                )
            )
        # A member is in a never-merge pair only once one of its merges was undone.
        pairs = self._kept_apart_from(obj) if any(event.undone_at for event in events) else ""
        return format_html(
            "{}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead>"
            "<tbody>{}</tbody></table>",
            pairs,
            _("merged"),
            _("members"),
            _("rule"),
            _("records moved"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def _kept_apart_from(self, obj: Member) -> str:
        """This member's never-merge pairs, as "Kept apart from #N", each linked."""
        pairs = list(NeverMerge.objects.filter(Q(member_a=obj) | Q(member_b=obj)).order_by("pk"))
        if not pairs:
            return ""
        links = format_html_join(
            ", ",
            '<a href="{}">#{}</a> (<a href="{}">{}</a>)',
            (
                (
                    reverse("admin:members_member_change", args=[pair.other(obj.pk)]),
                    pair.other(obj.pk),
                    reverse("admin:members_nevermerge_change", args=[pair.pk]),
                    _("never-merge pair"),
                )
                for pair in pairs
            ),
        )
        return format_html("<p>{} {}</p>", _("Kept apart from"), links)

    # --- Saving and unmerging go through services ---------------------------------------
    def save_model(self, request: HttpRequest, obj: Member, form: Any, change: bool) -> None:
        services.update_member_profile(obj, fields=list(form.changed_data))

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<int:member_id>/unmerge/<int:event_id>/",
                self.admin_site.admin_view(self.unmerge_view),
                name="members_member_unmerge",
            )
        ]
        return custom + super().get_urls()

    def unmerge_view(self, request: HttpRequest, member_id: int, event_id: int) -> HttpResponse:
        member = get_object_or_404(self.get_queryset(request), pk=member_id)
        if not self.has_change_permission(request, member):
            raise PermissionDenied
        event = get_object_or_404(
            MergeEvent.objects.select_related("absorbed", "survivor"),
            pk=event_id,
            survivor=member,
            outcome=MergeEvent.Outcome.MERGED,
        )
        change_url = reverse("admin:members_member_change", args=[member.pk])
        if request.method == "POST":
            try:
                restored = services.unmerge(event)
            except services.UnmergeError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(change_url)
            self.message_user(request, _("Member #%(id)s was split off again.") % {"id": restored.pk}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:members_member_change", args=[restored.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Unmerge member #%(id)s") % {"id": event.absorbed_id},
            "opts": self.model._meta,
            "member": member,
            "event": event,
            "moved": {key: len(ids) for key, ids in event.moved.items()},
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/members/member/unmerge_confirm.html", context)

    @admin.action(description=_("Undo the last merge of the selected members"), permissions=["change"])
    def undo_last_merge(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        events = (services.last_merge_of(member) for member in queryset)
        unmerge_each(self, request, (event for event in events if event is not None))

"""The privacy officer's queue of data-subject requests, and privacy center accounts.

The queue is sorted by deadline (open requests first), filtered by brand
(``queries.requests_of_brand``), deadline and assignee, and overdue requests carry a
written badge. Requests are never edited through a form: each button (assign, complete,
extend, refuse) is a POST to a view that calls one service in ``services``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cdp import audit
from cdp.admin_scope import golden_record_hidden, scoped, viewer
from cdp.models import AuditLog
from members.admin import MEMBER_SECTIONS, PiiAuditMixin
from members.masking import mask_email, mask_phone
from members.models import Identity, Member, StoreMembership

from . import deadlines, rights, services
from .admin_parts import (
    ACTIONS,
    AssigneeFilter,
    AssignForm,
    BrandFilter,
    DeadlineFilter,
    OfflineRequestForm,
    deadline_badge,
)
from .models import DataSubjectRequest, PrivacyAccount


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(PiiAuditMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "member_link", "brands", "jurisdiction", "status", "received", "due", "time_left",
                    "assignee")  # fmt: skip
    list_display_links = ("id", "kind")
    list_filter = (DeadlineFilter, AssigneeFilter, BrandFilter, "status", "kind", "jurisdiction")
    search_fields = ("=id", "=member__id")
    search_help_text = _("A request number or member id")
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    ordering = ("due_at", "id")  # what the column headers show; get_ordering puts open ones first
    actions = ["assign_to_me"]
    change_form_template = "admin/privacy/datasubjectrequest/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "member_link",
                    "contact",
                    "account",
                    "kind",
                    "details",
                    "received_via",
                    "jurisdiction",
                    "rule",
                )
            },
        ),
        (_("Progress"), {"fields": ("status", "assignee", "received_at", "due", "completed_at")}),
        (_("Extension and answer"), {"fields": ("original_due_at", "extended_at", "extension_reason", "response")}),
        (_("Outcome"), {"fields": ("outcome",)}),
    )

    class Media:
        css = {"all": ["consent/admin/requests.css"]}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field for _name, options in self.fieldsets for field in options["fields"]]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DataSubjectRequest]:
        # ModelAdmin.get_queryset orders before one could annotate: build it here (with the
        # relations the list and the page show; list_select_related would be ignored).
        closed = Case(
            When(status__in=DataSubjectRequest.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        qs = self.model._default_manager.select_related("member", "assignee", "account")
        # The person's brands (as far as the staff member sees them), two queries a page.
        memberships = scoped(StoreMembership.objects.select_related("store__brand"), request.user)
        qs = qs.prefetch_related(Prefetch("member__memberships", queryset=memberships, to_attr="seen_memberships"))
        return qs.annotate(_closed=closed).order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return ["_closed", "due_at", "id"]  # open ones first, the most urgent on top

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people make requests in the privacy center

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a request is a record of what a person asked for

    # --- Columns and fields --------------------------------------------------------------
    @admin.display(description=_("member"), ordering="member_id")
    def member_link(self, obj: DataSubjectRequest) -> str:
        url = reverse("admin:members_member_change", args=[obj.member_id])
        return format_html('<a href="{}">{}</a>', url, obj.member)

    @admin.display(description=_("brands"))
    def brands(self, obj: DataSubjectRequest) -> str:
        seen = getattr(obj.member, "seen_memberships", None) or []
        return ", ".join(sorted({m.store.brand.name for m in seen})) or "—"

    @admin.display(description=_("time left"), ordering="due_at")
    def time_left(self, obj: DataSubjectRequest) -> str:
        if not obj.is_open:
            return "—"
        days = (timezone.localdate(obj.due_at) - timezone.localdate()).days
        if days < 0:
            return ngettext("%(days)d day late", "%(days)d days late", -days) % {"days": -days}
        if days == 0:
            return gettext("due today")
        return ngettext("%(days)d day left", "%(days)d days left", days) % {"days": days}

    @admin.display(description=_("received"), ordering="received_at")
    def received(self, obj: DataSubjectRequest) -> str:
        return timezone.localtime(obj.received_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=_("due"), ordering="due_at")
    def due(self, obj: DataSubjectRequest) -> str:
        return deadline_badge(obj)

    @admin.display(description=_("rule"))
    def rule(self, obj: DataSubjectRequest) -> str:
        rule = deadlines.rule_for(obj.jurisdiction, obj.kind)
        units = {
            deadlines.DAYS: _("days"),
            deadlines.MONTHS: _("months"),
            deadlines.WORKING_DAYS: _("working days"),
        }[rule.unit]
        if rule.extendable:
            return _("%(law)s: %(due)s %(units)s, extendable once by %(ext)s") % {
                "law": rule.law,
                "due": rule.due,
                "units": units,
                "ext": rule.extension,
            }
        return _("%(law)s: %(due)s %(units)s, no extension") % {"law": rule.law, "due": rule.due, "units": units}

    @admin.display(description=_("contact points"))
    def contact(self, obj: DataSubjectRequest) -> str:
        member = obj.member
        if golden_record_hidden():  # ⚑ brand wall: the phone and e-mail the staff's brands hold
            held = scoped(Identity.objects.filter(member=member, kind__in=["phone", "email"]), viewer())
            found = dict(held.order_by("kind", "pk").values_list("kind", "value"))  # the newest of each
            phone, email = found.get("phone", ""), found.get("email", "")
        else:
            phone, email = member.phone, member.email
        if getattr(obj, "_show_pii", False):
            return " · ".join(v for v in (phone, email) if v) or "—"
        return " · ".join(v for v in (mask_phone(phone), mask_email(email)) if v) or "—"

    # --- The change page: read-only, with the action buttons -----------------------------
    def pii_on_page(self, obj: DataSubjectRequest) -> dict[str, Any]:
        return {"member": obj.member}  # its contact points, to reach the person

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])  # changes go through the action views
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(
                {
                    "show_save": False,
                    "show_save_and_continue": False,
                    "show_save_and_add_another": False,
                    "show_delete": False,
                    "can_act": obj.is_open and self.has_change_permission(request, obj),
                    "assign_form": AssignForm(initial={"assignee": obj.assignee_id}),
                    "history": AuditLog.objects.filter(
                        object_type="privacy.datasubjectrequest", object_id=str(obj.pk)
                    ).order_by("created_at", "id"),
                    "can_complete": obj.kind in (DataSubjectRequest.Kind.ACCESS, DataSubjectRequest.Kind.CORRECTION),
                    "can_extend": obj.extended_at is None and deadlines.rule_for(obj.jurisdiction, obj.kind).extendable,
                }
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Action views ----------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        custom = [
            path("offline/", self.admin_site.admin_view(self.offline_view), name="privacy_datasubjectrequest_offline"),
            path(
                "<int:request_id>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="privacy_datasubjectrequest_assign",
            ),
            path(
                "<int:request_id>/erase/",
                self.admin_site.admin_view(self.erase_view),
                name="privacy_datasubjectrequest_erase",
            ),
            *(
                path(
                    f"<int:request_id>/{name}/",
                    self.admin_site.admin_view(self._action_view(name)),
                    name=f"privacy_datasubjectrequest_{name}",
                )
                for name in ACTIONS
            ),
        ]
        return custom + super().get_urls()

    def offline_view(self, request: HttpRequest) -> HttpResponse:
        """Record a request made by phone, letter, at a store counter or by e-mail, through
        the same services as the privacy center (``rights.record_offline_request``)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        members = scoped(Member.objects.exclude(status=Member.Status.ERASED), request.user)
        form = OfflineRequestForm(request.POST or None, members=members, initial={"received_at": timezone.localtime()})
        status = 200
        if request.method == "POST":
            if form.is_valid():
                data = form.cleaned_data
                actor = audit.user_actor(request.user, audit.client_ip(request))
                try:
                    with audit.acting_as(actor):
                        made = rights.record_offline_request(
                            member=data["person"], kind=data["kind"], via=data["via"],
                            received_at=data["received_at"], details=data["details"], staff_label=actor.label,
                        )  # fmt: skip
                except rights.RequestError as exc:
                    form.add_error(None, str(exc))
                else:
                    messages.success(request, _("The request is recorded; its deadline counts from when it came."))
                    return HttpResponseRedirect(self._change_url(made))
            status = 400
        context = {
            **self.admin_site.each_context(request),
            "title": _("Record a request received offline"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/privacy/datasubjectrequest/offline.html", context, status=status)

    def _request_to_act_on(self, request: HttpRequest, request_id: int) -> DataSubjectRequest:
        obj = get_object_or_404(self.get_queryset(request).select_related("member", "assignee"), pk=request_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _change_url(self, obj: DataSubjectRequest) -> str:
        return reverse("admin:privacy_datasubjectrequest_change", args=[obj.pk])

    def assign_view(self, request: HttpRequest, request_id: int) -> HttpResponse:
        obj = self._request_to_act_on(request, request_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if request.POST.get("assignee") == "me":
            assignee = request.user
        else:
            form = AssignForm(request.POST)
            if not form.is_valid():
                self.message_user(request, _("Choose a staff member to assign the request to."), messages.ERROR)
                return HttpResponseRedirect(self._change_url(obj))
            assignee = form.cleaned_data["assignee"]
        try:
            services.assign_request(obj.pk, assignee=assignee)
        except services.QueueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                _("Request #%(id)s is assigned to %(user)s.") % {"id": obj.pk, "user": assignee.get_username()},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(self._change_url(obj))

    def erase_view(self, request: HttpRequest, request_id: int) -> HttpResponse:
        obj = self._request_to_act_on(request, request_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            services.retry_erasure(obj.pk)
        except services.QueueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request, _("The erasure of request #%(id)s is queued again.") % {"id": obj.pk}, messages.SUCCESS
            )
        return HttpResponseRedirect(self._change_url(obj))

    def _action_view(self, name: str) -> Any:
        def view(request: HttpRequest, request_id: int) -> HttpResponse:
            return self.action_view(request, request_id, name)

        return view

    def action_view(self, request: HttpRequest, request_id: int, name: str) -> HttpResponse:
        obj = self._request_to_act_on(request, request_id)
        spec = ACTIONS[name]
        if not obj.is_open:
            self.message_user(
                request,
                _("Request #%(id)s is already %(status)s: it cannot be acted on again.")
                % {"id": obj.pk, "status": obj.get_status_display().lower()},
                messages.ERROR,
            )
            return HttpResponseRedirect(self._change_url(obj))
        form = spec["form"](request.POST or None)
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    done = self._act(name, obj, form.cleaned_data)
                except services.QueueError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(request, self._done_message(name, done), messages.SUCCESS)
                    return HttpResponseRedirect(self._change_url(obj))
            status = 400
        new_due = None
        if name == "extend":
            new_due = deadlines.extended_due_at(
                obj.jurisdiction, received_at=obj.received_at, due=obj.due_at, kind=obj.kind
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": spec["title"] % {"id": obj.pk},
            "original": obj,
            "action": name,
            "button": spec["button"],
            "form": form,
            "new_due": new_due,
            "rule": self.rule(obj),
            "change_url": self._change_url(obj),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/privacy/datasubjectrequest/action.html", context, status=status)

    @staticmethod
    def _act(name: str, obj: DataSubjectRequest, data: dict[str, Any]) -> DataSubjectRequest:
        if name == "complete":
            return services.complete_request(obj.pk, note=data["note"])
        if name == "extend":
            return services.extend_request(obj.pk, reason=data["reason"])
        return services.refuse_request(obj.pk, reason=data["reason"])

    @staticmethod
    def _done_message(name: str, done: DataSubjectRequest) -> str:
        if name == "complete":
            return _("Request #%(id)s is completed; the person is told.") % {"id": done.pk}
        if name == "extend":
            return _("Request #%(id)s is now due %(due)s; the person is told why.") % {
                "id": done.pk,
                "due": timezone.localtime(done.due_at).strftime("%Y-%m-%d"),
            }
        return _("Request #%(id)s is refused; the person is told why.") % {"id": done.pk}

    @admin.action(description=_("Assign the selected requests to me"), permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[DataSubjectRequest]) -> None:
        done, skipped = 0, 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                services.assign_request(pk, assignee=request.user)
                done += 1
            except services.QueueError:
                skipped += 1
        self.message_user(request, _("%(count)d request(s) assigned to you.") % {"count": done}, messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                _("%(count)d closed request(s) were left as they are.") % {"count": skipped},
                messages.WARNING,
            )


@admin.register(PrivacyAccount)
class PrivacyAccountAdmin(PiiAuditMixin, admin.ModelAdmin):
    list_display = ("id", "member", "phone_verified", "created_at", "linked_at", "closed_at")
    list_filter = ("phone_verified",)
    search_fields = ("=id", "=member__id")
    list_select_related = ("member",)
    fields = readonly_fields = (
        "user", "member", "shown_phone", "phone_verified", "created_at", "linked_at", "closed_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def pii_on_page(self, obj: PrivacyAccount) -> dict[str, Any] | None:
        return {"member": obj.member, "account": obj.pk} if obj.phone else None

    @admin.display(description=_("phone"))
    def shown_phone(self, obj: PrivacyAccount) -> str:
        if not obj.phone:
            return "—"
        return obj.phone if getattr(obj, "_show_pii", False) else mask_phone(obj.phone)


def member_requests(member: Any, request: HttpRequest) -> str:
    """The person's data-subject requests on their member page (one query), for staff who
    may read the queue; nothing when they made none."""
    if not request.user.has_perm("privacy.view_datasubjectrequest"):
        return ""
    found = list(
        DataSubjectRequest.objects.filter(member_id=member.pk).select_related("assignee").order_by("-received_at")[:20]
    )
    if not found:
        return ""
    now = timezone.now()
    for item in found:
        item.badge = deadline_badge(item, now)
    return render_to_string(
        "admin/privacy/datasubjectrequest/member_requests.html", {"requests": found}, request=request
    )


if member_requests not in MEMBER_SECTIONS:  # a reload must not show it twice
    MEMBER_SECTIONS.append(member_requests)

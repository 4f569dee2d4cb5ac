"""Never-merge pairs: members an unmerge split, which identity resolution keeps apart.

Pairs are made by unmerging (the member page, the merge events), never added here; staff
with ``members.delete_nevermerge`` (privacy officers, administrators) remove one, and the
next record linking the two merges them again. Contact points are masked for staff
without ``members.view_pii``; an unmasked page or list is audited (``PiiAuditMixin``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .. import services
from ..masking import can_view_pii, mask_email, mask_phone
from ..models import Member, NeverMerge
from .pii import PiiAuditMixin


def member_cell(member: Member, *, full: bool) -> str:
    """``#12 张伟 · 138****8000 · w***@example.com``, linked to the member's page; contact
    points in full only for staff who may see them."""
    phone = member.phone if full else mask_phone(member.phone)
    email = member.email if full else mask_email(member.email)
    contact = "".join(f" · {value}" for value in (phone, email) if value)
    url = reverse("admin:members_member_change", args=[member.pk])
    return format_html('<a href="{}">{}</a>{}', url, str(member), contact)


@admin.register(NeverMerge)
class NeverMergeAdmin(PiiAuditMixin, admin.ModelAdmin):
    list_display = ["__str__", "member_a_masked", "member_b_masked", "undone_merge", "created_at", "created_by"]
    list_select_related = ["member_a", "member_b", "unmerge_event"]
    date_hierarchy = "created_at"
    AFTER = ["undone_merge", "created_at", "created_by", "kept_apart_history"]

    # --- Made by unmerging, removed through ``allow_merge``; never edited ----------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: NeverMerge) -> None:
        services.allow_merge(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[NeverMerge]) -> None:
        for pair in queryset:
            services.allow_merge(pair)

    # --- PII per request -----------------------------------------------------------------
    def _members(self, request: HttpRequest) -> list[str]:
        if can_view_pii(request.user):
            return ["member_a_full", "member_b_full"]
        return ["member_a_masked", "member_b_masked"]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return ["__str__", *self._members(request), "undone_merge", "created_at", "created_by"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self._members(request), *self.AFTER]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    def pii_on_page(self, obj: NeverMerge) -> dict[str, Any]:
        return {"member_ids": [obj.member_a_id, obj.member_b_id]}

    def pii_in_list(self, results: list[NeverMerge]) -> dict[str, Any] | None:
        ids = [member_id for pair in results for member_id in (pair.member_a_id, pair.member_b_id)]
        return {"member_ids": ids} if ids else None

    @admin.display(description=_("member"))
    def member_a_masked(self, obj: NeverMerge) -> str:
        return member_cell(obj.member_a, full=False)

    @admin.display(description=_("member"))
    def member_a_full(self, obj: NeverMerge) -> str:
        return member_cell(obj.member_a, full=True)

    @admin.display(description=_("kept apart from"))
    def member_b_masked(self, obj: NeverMerge) -> str:
        return member_cell(obj.member_b, full=False)

    @admin.display(description=_("kept apart from"))
    def member_b_full(self, obj: NeverMerge) -> str:
        return member_cell(obj.member_b, full=True)

    @admin.display(description=_("undone merge"))
    def undone_merge(self, obj: NeverMerge) -> str:
        event = obj.unmerge_event
        if event is None:
            return "—"
        url = reverse("admin:members_mergeevent_change", args=[event.pk])
        return format_html('<a href="{}">#{} → #{}</a>', url, event.absorbed_id, event.survivor_id)

    @admin.display(description=_("merges refused"))
    def kept_apart_history(self, obj: NeverMerge) -> str:
        """The records that would have merged the two again (the "kept apart" events)."""
        events = list(obj.kept_apart_events.order_by("-created_at", "-pk"))
        if not events:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{timezone.localtime(event.created_at):%Y-%m-%d %H:%M}",
                    f"#{event.survivor_id}",
                    f"#{event.absorbed_id}",
                    event.get_rule_display(),
                    event.matched_display or "—",
                )
                for event in events
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("when"),
            _("record went to"),
            _("kept apart"),
            _("rule"),
            _("shared identity"),
            rows,
        )

"""Merge events: who was merged into whom by which rule, the merges refused because two
members are a never-merge pair ("kept apart"), and undoing merges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp.admin import ReadOnlyAdminMixin

from .. import services
from ..masking import can_view_pii
from ..models import MergeEvent
from .pii import PiiAuditMixin


@admin.register(MergeEvent)
class MergeEventAdmin(PiiAuditMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "absorbed", "survivor", "outcome", "rule", "actor_label", "undone_at"]
    list_filter = ["outcome", "rule", ("undone_at", admin.EmptyFieldListFilter)]
    list_select_related = ["absorbed", "survivor"]
    date_hierarchy = "created_at"
    actions = ["undo_merges"]
    fields = [
        "created_at",
        "outcome",
        "survivor",
        "absorbed",
        "rule",
        "kept_apart_by",
        "moved",
        "profile_changes",
        "actor_label",
        "undone_at",
        "undone_by",
    ]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return self.list_display

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.fields)
        if can_view_pii(request.user):
            fields.insert(fields.index("rule") + 1, "matched_value")
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    def pii_on_page(self, obj: MergeEvent) -> dict[str, Any] | None:
        if not obj.matched_value:  # the shared phone, e-mail, …
            return None
        return {"member": obj.survivor, "member_ids": [obj.survivor_id, obj.absorbed_id]}

    def has_unmerge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("members.change_member")

    @admin.action(description=_("Undo the selected merges"), permissions=["unmerge"])
    def undo_merges(self, request: HttpRequest, queryset: QuerySet[MergeEvent]) -> None:
        # Newest first, so chains of merges unwind in the reverse of how they happened.
        # "Kept apart" events are no merges: nothing to undo (remove the pair instead).
        merges = queryset.filter(outcome=MergeEvent.Outcome.MERGED)
        unmerge_each(self, request, merges.order_by("-created_at", "-pk"))


def unmerge_each(model_admin: admin.ModelAdmin, request: HttpRequest, events: Iterable[MergeEvent]) -> None:
    """Undo the merges one after the other (each ``services.unmerge`` its own transaction):
    a warning for each that cannot be undone, then how many were."""
    done = 0
    for event in events:
        try:
            services.unmerge(event)
            done += 1
        except services.UnmergeError as exc:
            model_admin.message_user(request, str(exc), messages.WARNING)
    model_admin.message_user(request, _("%(count)d merge(s) undone.") % {"count": done}, messages.SUCCESS)

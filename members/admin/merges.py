"""Merge events: who was merged into whom by which rule, the merges refused because two
members are a never-merge pair ("kept apart"), and undoing merges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from cdp.admin import ReadOnlyAdminMixin

from .. import services
from ..masking import mask_profile_changes
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
        "matched_display",
        "kept_apart_by",
        "moved",
        "shown_profile_changes",
        "actor_label",
        "undone_at",
        "undone_by",
    ]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return self.list_display

    # The shared identity is kept as a keyed hash and shown masked to everyone; the profile
    # values a merge changed are shown unmasked only to staff with ``members.view_pii``,
    # and that view is audited (``PiiAuditMixin``), like every other unmasked page.
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    def pii_on_page(self, obj: MergeEvent) -> dict[str, Any] | None:
        if not _has_values(obj.profile_changes):
            return None
        return {"member": obj.survivor, "member_ids": [obj.survivor_id, obj.absorbed_id], "merge_event": obj.pk}

    @admin.display(description=_("profile changes"))
    def shown_profile_changes(self, obj: MergeEvent) -> str:
        changes = obj.profile_changes or {}
        if not getattr(obj, "_show_pii", False):  # set per request for staff with view_pii
            changes = mask_profile_changes(changes)
        rows = [(name, *_before_after(value)) for name, value in changes.items() if name != "attributes_added"]
        added = changes.get("attributes_added") or []
        if added:
            rows.append((_("attributes added"), "", ", ".join(map(str, added))))
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("field"),
            _("before"),
            _("after"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    def has_unmerge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("members.change_member")

    @admin.action(description=_("Undo the selected merges"), permissions=["unmerge"])
    def undo_merges(self, request: HttpRequest, queryset: QuerySet[MergeEvent]) -> None:
        # Newest first, so chains of merges unwind in the reverse of how they happened.
        # "Kept apart" events are no merges: nothing to undo (remove the pair instead).
        merges = queryset.filter(outcome=MergeEvent.Outcome.MERGED)
        unmerge_each(self, request, merges.order_by("-created_at", "-pk"))


def _before_after(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return ("" if value[0] is None else value[0]), ("" if value[1] is None else value[1])
    return "", value


def _has_values(changes: dict[str, Any] | None) -> bool:
    """Whether a page showing ``changes`` unmasked shows someone's values."""
    return any(name != "attributes_added" for name in (changes or {}))


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

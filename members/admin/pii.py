"""Auditing of unmasked contact points shown in the admin (``pii.viewed``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from ..masking import audit_pii_view, can_view_pii


class PiiAuditMixin:
    """One ``pii.viewed`` audit row per page that shows contact points unmasked (to staff
    with ``members.view_pii``). Subclasses say what a page showed: ``pii_on_page(obj)``
    for a change page and ``pii_in_list(results)`` for a list, each returning the keyword
    arguments of ``audit_pii_view`` or None (nothing unmasked). The view is named after
    the admin URL (``members_member_change``)."""

    def pii_on_page(self, obj: Any) -> dict[str, Any] | None:
        return None

    def pii_in_list(self, results: list[Any]) -> dict[str, Any] | None:
        return None

    def _pii_view_name(self, page: str) -> str:
        opts = self.model._meta  # type: ignore[attr-defined]
        return f"{opts.app_label}_{opts.model_name}_{page}"

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        # Called exactly when the page is rendered (GET, or a POST with errors).
        if obj is not None and can_view_pii(request.user):
            obj._show_pii = True  # for display methods that mask by themselves
            shown = self.pii_on_page(obj)
            if shown is not None:
                audit_pii_view(self._pii_view_name("change"), **shown)
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[misc]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        changelist = getattr(response, "context_data", None) and response.context_data.get("cl")
        if changelist is not None and can_view_pii(request.user):
            # Evaluates the page's queryset once; the template reuses its result cache.
            shown = self.pii_in_list(list(changelist.result_list))
            if shown is not None:
                audit_pii_view(self._pii_view_name("changelist"), **shown)
        return response

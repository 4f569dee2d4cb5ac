"""List filters and the evidence formatter shared by the consent admin pages."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cdp.admin_scope import scoped

from .. import evidence
from ..models import (
    Purpose,
)


class PurposeListFilter(admin.RelatedFieldListFilter):
    """``Purpose.__str__`` shows the brand code: fetch brands with the purposes (one query)."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        purposes = scoped(Purpose.objects.select_related("brand"), request.user).order_by("brand__code", "code")
        return [(p.pk, str(p)) for p in purposes]


class CanonicalMemberFilter(admin.SimpleListFilter):
    """``?member=ID``: the person's events, including those of members merged into them.
    Shown only while used (the member page links here)."""

    title = _("member")
    parameter_name = "member"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"#{value}")] if value and value.isdigit() else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(member_id__in=evidence.person(int(value)))
        return queryset


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)

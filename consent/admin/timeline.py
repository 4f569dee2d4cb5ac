"""The consent section of the member page (``members.admin.MEMBER_SECTIONS``)."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode

from cdp.admin_scope import staff_brand_ids
from members.admin import MEMBER_SECTIONS
from members.models import Member

from .. import evidence

TIMELINE_EVENTS = 50


# --- The consent timeline on the member page ----------------------------------------------


def consent_timeline(member: Member, request: HttpRequest) -> str:
    """Current choices and the latest events of this person (one query, see
    ``evidence.member_timeline``), for staff who may read the ledger."""
    if not request.user.has_perm("consent.view_consentevent"):
        return ""
    context = {
        **evidence.member_timeline(member, limit=TIMELINE_EVENTS, brand_ids=staff_brand_ids(request.user)),
        "member": member,
        "limit": TIMELINE_EVENTS,
        "ledger_url": reverse("admin:consent_consentevent_changelist") + "?" + urlencode({"member": member.pk}),
    }
    return render_to_string("admin/consent/member_timeline.html", context, request=request)


if consent_timeline not in MEMBER_SECTIONS:  # a reload must not show it twice
    MEMBER_SECTIONS.append(consent_timeline)

"""Global Privacy Control in the privacy center (``consent.services.gpc`` holds the rule).

Every signed-in page (``access.privacy_page``) honours a ``Sec-GPC: 1`` request header:
the person's standing grants of sale or sharing purposes are withdrawn where the brand
honours the signal, and the page says so (``templates/privacy/_gpc.html``). A grant of
such a purpose asked for with the signal is refused (``views.set_consent``): the signal
is the person's choice too, and recording a grant that the next page view withdraws would
only fill the ledger. To allow sharing, the person turns the signal off in the browser.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from cdp import audit
from consent.services import gpc
from members.models import Member

USER_AGENT_KEPT = 300


def sends_signal(request: HttpRequest) -> bool:
    # The specification's only valid value is "1"; anything else is no signal.
    return request.headers.get(gpc.HEADER, "").strip() == "1"


def evidence(request: HttpRequest) -> dict[str, Any]:
    return {
        "header": gpc.HEADER,
        "value": request.headers.get(gpc.HEADER, "").strip(),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_KEPT],
        "ip": audit.client_ip(request) or "",
        "received_at": timezone.now().isoformat(),
        "page": request.path[:200],
    }


def honour(request: HttpRequest, member: Member | None) -> gpc.Honoured | None:
    """The signal honoured for the signed-in ``member``; None without the signal."""
    if member is None or not sends_signal(request):
        return None
    return gpc.honour_gpc(member=member, evidence=evidence(request))

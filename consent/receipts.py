"""Consent receipts: a person's own copy of one consent event, in the field names of the
Kantara Initiative Consent Receipt Specification v1.1, plus a readable HTML version.

The receipt id is derived from the event's chain hash: stable (the same event always
gives the same receipt), unguessable (nobody can enumerate other people's receipts), and
it ties the person's copy to the ledger row a regulator would be shown.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import translation

from . import texts
from .models import NO_CHANNEL, Action, Channel, ConsentEvent, Notice

KANTARA_VERSION = "KI-CR-v1.1.0"
# The receipt describes an event the person explicitly made or confirmed; implied consent
# is not something this platform records.
CONSENT_TYPE = "EXPLICIT"
TERMINATION = "until withdrawn"
THIRD_PARTY_PURPOSE = "third_party_sharing"
NO_CHANNEL_CATEGORY = "profile"  # purposes that contact nobody use the profile data


def load_event(pk: int) -> ConsentEvent | None:
    """An event with everything a receipt shows, in one query."""
    return (
        ConsentEvent.objects.select_related("brand", "purpose", "notice", "store", "member__merged_into")
        .filter(pk=pk)
        .first()
    )


def receipt_id(event: ConsentEvent) -> str:
    return str(uuid.UUID(hex=event.hash[:32]))


def receipt_filename(event: ConsentEvent) -> str:
    return f"consent-receipt-{event.pk}.json"


def policy_url(notice: Notice | None) -> str:
    """Where the exact text the person was shown can be read again."""
    if notice is None:
        return settings.SITE_URL + "/privacy/"
    return notice.url or settings.SITE_URL + reverse("consent:notice", args=[notice.pk])


def collection_method(event: ConsentEvent) -> str:
    """Where the choice was made, in the person's words ("at the Lotus Tmall flagship store")."""
    return texts.source_in_words(event.source_type, event.brand.name, event.store.name if event.store_id else "")


def receipt_for(event: ConsentEvent) -> dict[str, Any]:
    """The Kantara v1.1 receipt of ``event`` as a JSON-ready dict. ``publicKey`` is left
    out: receipts are not signed separately, the ledger's hash chain is the proof."""
    brand, purpose, notice = event.brand, event.purpose, event.notice
    language = notice.locale if notice else translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        method = collection_method(event)
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": brand.jurisdiction,
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": method,
        "consentReceiptID": receipt_id(event),
        "language": language,
        # Pseudonymous: a receipt travels by mail and may be forwarded; never a contact point.
        "piiPrincipalId": f"member-{event.member_id}",
        "piiControllers": [
            {
                "piiController": brand.legal_name or brand.name,
                "contact": brand.name,
                "address": brand.address,
                "email": brand.privacy_email,
                "phone": "",
            }
        ],
        "policyUrl": policy_url(notice),
        "services": [
            {
                "service": brand.name,
                "purposes": [
                    {
                        "purpose": texts.localized(purpose, "name", brand),
                        "purposeCategory": [purpose.code],
                        "consentType": CONSENT_TYPE,
                        "piiCategory": [event.channel or NO_CHANNEL_CATEGORY],
                        "primaryPurpose": not purpose.separate_consent,
                        "termination": TERMINATION,
                        "thirdPartyDisclosure": purpose.is_sale_or_sharing or purpose.code == THIRD_PARTY_PURPOSE,
                        "action": event.action,
                        "channel": event.channel,
                    }
                ],
            }
        ],
        "sensitive": purpose.separate_consent,
        "spiCat": [],
        # Not in the specification: what ties this copy to the ledger and the notice text.
        "evidence": {
            "notice": {"id": notice.pk, "version": notice.version, "sha256": notice.sha256} if notice else None,
            "eventHash": event.hash,
            "sequence": event.seq,
        },
    }


def _label(choices: Any, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


# Where a consent choice went after it was recorded (webhooks, consent files): filled by
# the apps that send it on (webhooks.propagation), shown on receipt pages, not in mails
# (a mailed receipt leaves before anything was passed on).
PROPAGATION: list[Callable[[ConsentEvent], list[Any]]] = []


def render_receipt_html(
    event: ConsentEvent,
    *,
    withdraw_url: str | None = None,
    json_url: str | None = None,
    passed_on: bool = False,
    back_url: str | None = None,
    scan: dict[str, Any] | None = None,
) -> str:
    """The receipt as a standalone HTML document (a mail body, or an admin page), in the
    active language; ``passed_on``: with where the choice went (pages, not mails);
    ``scan``: the link to the signed paper form's scan (the admin's page only)."""
    receipt = receipt_for(event)
    context = {
        "receipt": receipt,
        "event": event,
        "brand": event.brand,
        "purpose": event.purpose,
        # In the active language, else the brand's fallback (the receipt mail is sent in the person's).
        "purpose_name": receipt["services"][0]["purposes"][0]["purpose"],
        "purpose_description": texts.localized(event.purpose, "description", event.brand),
        "notice": event.notice,
        "action_label": _label(Action, event.action),
        # The page's language; the receipt's own field stays in the receipt's (its notice's).
        "collection_method": collection_method(event),
        "channel_label": _label(Channel, event.channel) if event.channel != NO_CHANNEL else "",
        "controller": receipt["piiControllers"][0],
        "withdraw_url": withdraw_url,
        "json_url": json_url,
        "passed_on": [row for source in PROPAGATION for row in source(event)] if passed_on else [],
        "back_url": back_url,
        "scan": scan,
    }
    return render_to_string("consent/receipt.html", context)


# --- Admin views -------------------------------------------------------------------------


def _admin_event(admin_site: AdminSite, request: HttpRequest, object_id: int) -> ConsentEvent:
    # Same permission as the ledger page the link sits on; one check for both views.
    model_admin = admin_site._registry.get(ConsentEvent)
    if model_admin is None or not model_admin.has_view_permission(request):
        raise PermissionDenied
    event = load_event(object_id)
    # ⚑ Brand wall: the ledger page's own queryset (scoped to the staff member's brands).
    if event is None or not model_admin.get_queryset(request).filter(pk=event.pk).exists():
        raise Http404
    return event


def receipt_urls(
    admin_site: AdminSite, scan_link: Callable[[HttpRequest, ConsentEvent], dict[str, Any] | None] | None = None
) -> list[URLPattern]:
    """URL patterns for ``ConsentEventAdmin.get_urls`` (before the default ones, whose
    ``<path:object_id>/`` would swallow them): the receipt as HTML and as JSON.
    ``scan_link``: what the page shows of a paper form's scan (``consent.admin.paper``)."""

    def html_view(request: HttpRequest, object_id: int) -> HttpResponse:
        event = _admin_event(admin_site, request, object_id)
        json_url = reverse(f"{admin_site.name}:consent_consentevent_receipt_json", args=[event.pk])
        scan = scan_link(request, event) if scan_link is not None else None
        return HttpResponse(render_receipt_html(event, json_url=json_url, passed_on=True, scan=scan))

    def json_view(request: HttpRequest, object_id: int) -> HttpResponse:
        event = _admin_event(admin_site, request, object_id)
        body = json.dumps(receipt_for(event), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{receipt_filename(event)}"'
        return response

    views: list[tuple[str, Callable[..., HttpResponse], str]] = [
        ("<int:object_id>/receipt/", html_view, "consent_consentevent_receipt"),
        ("<int:object_id>/receipt.json", json_view, "consent_consentevent_receipt_json"),
    ]
    return [path(route, admin_site.admin_view(view), name=name) for route, view, name in views]

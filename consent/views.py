"""Consumer pages behind the links in mails: confirm a subscription, unsubscribe, and read
the notice a consent pointed at.

The signed token in the URL is the authorisation; there is no login. GET never changes
anything: mail scanners and link previews fetch every link in a message, and a fetched
link must not subscribe or unsubscribe anyone. Pages speak the member's language when we
know it (they arrive from a mail written in it), else the browser's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from cdp import audit
from members.masking import mask_email, mask_phone
from members.models import Brand, Member

from . import optin, tokens
from .mail import brand_color, language_for
from .models import NO_CHANNEL, Channel, Notice
from .services import ConsentError

USER_AGENT_KEPT = 300

# Status, title and explanation of each way a link can fail.
_ERRORS: dict[str, tuple[int, Any, Any]] = {
    "forged": (
        400,
        _("This link is not valid"),
        _("Please open the link from the e-mail again, or copy the whole link into your browser."),
    ),
    "expired": (
        410,
        _("This link has expired, ask for a new one"),
        _("Confirmation links are valid for a limited time. Subscribe again to receive a new link."),
    ),
    "superseded": (
        409,
        _("This link no longer applies"),
        _(
            "Your choice changed after this e-mail was sent: you withdrew it, or asked again and "
            "received a newer link. Nothing was changed; your current choice stays as it is."
        ),
    ),
    "refused": (
        409,
        _("This cannot be done with this link"),
        _("Please contact the brand's privacy team if you want to change your choice."),
    ),
}


def _evidence(request: HttpRequest) -> dict[str, Any]:
    return {
        "ip": audit.client_ip(request) or "",
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_KEPT],
    }


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    member: Member | None = None,
    language: str = "",
    status: int = 200,
) -> HttpResponse:
    if member is not None and member.locale:
        language = language_for(member)
    try:
        language = translation.get_supported_language_variant(language) if language else translation.get_language()
    except LookupError:
        language = translation.get_language()
    brand = context.get("brand")
    with translation.override(language):
        response = render(request, template, {**context, "brand_color": brand_color(brand)}, status=status)
    response["Content-Language"] = language
    return response


def _error(request: HttpRequest, kind: str, brand: Brand | None = None) -> HttpResponse:
    status, title, message = _ERRORS[kind]
    return _page(
        request, "consent/link_error.html", {"title": title, "message": message, "brand": brand}, status=status
    )


def _channel_label(channel: str) -> str:
    return str(Channel(channel).label) if channel in Channel.values else ""


@never_cache
@require_http_methods(["GET", "POST"])
def confirm_opt_in(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what the person is confirming; only the button (POST) confirms."""
    try:
        if request.method == "POST":
            event = optin.confirm_email_opt_in(token, evidence=_evidence(request))
            context = {"brand": event.brand, "purpose": event.purpose, "notice": event.notice}
            return _page(request, "consent/confirm_done.html", context, member=event.member)
        opt_in = optin.load_opt_in(token)
    except tokens.ExpiredToken:
        return _error(request, "expired")
    except tokens.ForgedToken:
        return _error(request, "forged")
    except optin.OptInSuperseded:
        return _error(request, "superseded")
    except ConsentError:  # e.g. the person's data was erased meanwhile
        return _error(request, "refused")
    brand = opt_in.request.brand
    if opt_in.status == "superseded":
        return _error(request, "superseded", brand)
    context = {"brand": brand, "purpose": opt_in.request.purpose, "notice": opt_in.request.notice}
    template = "consent/confirm_done.html" if opt_in.status == "confirmed" else "consent/confirm.html"
    return _page(request, template, context, member=opt_in.member)


# Exempt from CSRF on purpose, and only this view: RFC 8058 one-click unsubscribe is a POST
# made by the mail client (Gmail, Apple Mail, …) without our page, cookies or CSRF token.
# The signed token in the URL is the authorisation, and the only thing a forged cross-site
# POST could achieve is what the link's holder may do anyway: withdraw consent.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks; POST (the page's button, or a mail client's one-click) withdraws."""
    try:
        if request.method == "POST":
            one_click = request.POST.get("List-Unsubscribe") == "One-Click"
            found = optin.unsubscribe(token, evidence={**_evidence(request), "one_click": one_click})
        else:
            found = optin.load_unsubscribe(token)
    except tokens.ForgedToken:
        return _error(request, "forged")
    except ConsentError:  # e.g. the purpose no longer uses this channel
        return _error(request, "refused")
    if found.channel == Channel.EMAIL:
        contact = mask_email(found.member.email)
    elif found.channel in (Channel.SMS, Channel.PHONE):
        contact = mask_phone(found.member.phone)
    else:
        contact = ""
    context = {
        "brand": found.brand,
        "purpose": found.purpose,
        "channel": found.channel,
        "channel_label": _channel_label(found.channel) if found.channel != NO_CHANNEL else "",
        "contact": contact,
    }
    template = "consent/unsubscribe_done.html" if found.withdrawn else "consent/unsubscribe.html"
    return _page(request, template, context, member=found.member)


@require_GET
def notice(request: HttpRequest, pk: int) -> HttpResponse:
    """A published notice exactly as stored, with its SHA-256: what receipts point at."""
    shown = get_object_or_404(Notice.objects.select_related("brand", "purpose"), pk=pk)
    # The same notice in the brand's other languages: each language has its own versions,
    # so the newest of each.
    others: dict[str, Notice] = {}
    for other in (
        Notice.objects.filter(brand_id=shown.brand_id, kind=shown.kind, purpose_id=shown.purpose_id)
        .exclude(locale=shown.locale)
        .only("pk", "locale", "version")
        .order_by("locale", "-version")
    ):
        others.setdefault(other.locale, other)
    languages = [{"code": code, "notice": others[code]} for code, _label in settings.LANGUAGES if code in others]
    context = {"brand": shown.brand, "notice": shown, "languages": languages}
    # The page around the text speaks the text's language.
    return _page(request, "consent/notice.html", context, language=shown.locale)

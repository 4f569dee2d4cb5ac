"""Privacy center pages. Thin: each view checks access through ``access.privacy_page``,
reads through ``queries`` and writes through ``rights`` / ``services`` / ``optin``.

Every change is a POST with a CSRF token; every page works without JavaScript (the
switches are buttons in forms; ``static/privacy/privacy.js`` only saves the reload).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cdp import audit
from consent import choices, receipts, services
from consent.mail import brand_color
from consent.models import Channel, Notice, Purpose, SourceType
from consent.services import ConsentError
from consent.services import gpc as gpc_rule

from . import export, face, gpc, queries, rights, timeline, timezones
from . import undo as undo_offers
from .access import member_for_request, privacy_page
from .forms import CorrectionForm, DeletionForm, PreferenceForm
from .models import DataSubjectRequest

USER_AGENT_KEPT = 300


def _evidence(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {
        "ip": audit.client_ip(request) or "",
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_KEPT],
        "account": getattr(request.privacy_account, "pk", None),
        **extra,
    }


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    brands = context.get("brands") or []
    context.setdefault("brand_color", brand_color(brands[0] if len(brands) == 1 else None))
    context.setdefault("face", face.face(face.for_page(request, brands)))
    context.setdefault("member", getattr(request, "privacy_member", None))
    return render(request, template, context, status=status)


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@never_cache
@require_GET
@privacy_page(needs_member=False)
def overview(request: HttpRequest) -> HttpResponse:
    member = request.privacy_member
    if member is None:
        return _render(request, "privacy/not_linked.html", {})
    held = queries.memberships(member)
    brands = face.first(request, queries.brands_holding_data(member, held))
    orders = queries.orders_by_brand(member)
    rows = [
        {
            "brand": brand,
            "memberships": [m for m in held if m.store.brand_id == brand.pk],
            "orders": orders.get(brand.pk),
        }
        for brand in brands
    ]
    context = {"rows": rows, "identities": queries.identities(member), "brands": brands}
    return _render(request, "privacy/overview.html", context)


@never_cache
@require_GET
@privacy_page()
def consents(request: HttpRequest) -> HttpResponse:
    return _consents_page(request)


def _consents_page(request: HttpRequest, status: int = 200) -> HttpResponse:
    member = member_for_request(request)
    brands = face.first(request, queries.brands_holding_data(member, queries.memberships(member)))
    boards = queries.consent_boards(member, brands, translation.get_language() or "")
    # The script's copy of the Undo form (privacy/_undo.html), filled in per withdrawal.
    context = {"boards": boards, "brands": brands, "undo": undo_offers.offer("", reverse("privacy:consents"))}
    return _render(request, "privacy/consents.html", context, status=status)


def _target(request: HttpRequest, member: Any) -> tuple[Purpose, str, Notice | None]:
    """The purpose × channel a switch names, only among brands holding this person's data."""
    try:
        purpose_id = int(request.POST.get("purpose", ""))
    except ValueError:
        raise Http404 from None
    channel = request.POST.get("channel", "")
    brand_ids = {b.pk for b in queries.brands_holding_data(member, queries.memberships(member))}
    purpose = Purpose.objects.select_related("brand").filter(pk=purpose_id, is_active=True).first()
    if purpose is None or purpose.brand_id not in brand_ids or not purpose.allows_channel(channel):
        raise Http404
    notice = None
    if request.POST.get("notice", "").isdigit():
        notice = (
            Notice.objects.filter(pk=int(request.POST["notice"]), brand_id=purpose.brand_id)
            .filter(Q(purpose__isnull=True) | Q(purpose=purpose))
            .first()
        )
    return purpose, channel, notice


@require_POST
@privacy_page()
def set_consent(request: HttpRequest) -> HttpResponse:
    """One switch: ``value`` "on" grants (e-mail: asks for double opt-in), "off" withdraws."""
    member = member_for_request(request)
    purpose, channel, notice = _target(request, member)
    value = request.POST.get("value")
    if value not in ("on", "off"):
        return HttpResponseBadRequest(_("Choose on or off."))
    if value == "on" and gpc.sends_signal(request) and gpc_rule.refuses_grant(purpose):
        # Refused, not recorded: the signal is the person's choice too (privacy/gpc.py).
        note = _(
            "Your browser sends a Global Privacy Control signal, which asks us not to sell or share your "
            "data, so sharing with third parties stays off. To allow it, turn Global Privacy Control off "
            "in your browser first."
        )
        if _wants_json(request):
            return JsonResponse({"error": note}, status=409)
        messages.error(request, note)
        return redirect(reverse("privacy:consents") + f"#p-{purpose.pk}-{channel or 'none'}")
    text = _choice_text(purpose, channel)  # as the switch showed it: the page's language, else the brand's fallback
    evidence = _evidence(request, checkbox=text, notice_version=notice.version if notice else None)
    try:
        choice = choices.set_choice(
            member=member, purpose=purpose, channel=channel, on=value == "on",
            source_type=SourceType.PRIVACY_CENTER, notice=notice, evidence=evidence,
        )  # fmt: skip
    except ConsentError:
        note = _("This choice could not be saved. Please reload the page and try again.")
        if _wants_json(request):
            return JsonResponse({"error": note}, status=409)
        messages.error(request, note)
        return redirect(reverse("privacy:consents"))
    state = choice.state
    if state == "pending":
        note = _("Almost done: we sent you an e-mail. Open the link in it to confirm.")
    elif state == "on":
        note = _("Turned on: %(what)s") % {"what": text}
    else:
        note = _("Turned off: %(what)s") % {"what": text}
    back = reverse("privacy:consents") + f"#p-{purpose.pk}-{channel or 'none'}"
    token = choices.undo_token([choice.event]) if state == "off" and choice.event else None
    if _wants_json(request):
        answer: dict[str, Any] = {"state": state, "message": note}
        if token:
            answer["undo"] = {"url": reverse("privacy:undo"), "token": token, "seconds": settings.PRIVACY_UNDO_SECONDS}
        return JsonResponse(answer)
    messages.success(request, undo_offers.with_undo(request, note, token, back))
    return redirect(back)


@require_POST
@privacy_page()
def undo(request: HttpRequest) -> HttpResponse:
    """The Undo button of a withdrawal (``choices.undo_withdrawal``). Refused: the reason,
    with a 4xx, on the consents page (or as JSON for the script)."""
    member = member_for_request(request)
    try:
        done = choices.undo_withdrawal(
            member=member, token=request.POST.get("token", ""), evidence=_evidence(request),
            gpc_signal=gpc.sends_signal(request),
        )  # fmt: skip
    except choices.UndoRefused as refused:
        text, status = undo_offers.REFUSALS[refused.reason]
        note = str(text)
        if _wants_json(request):
            return JsonResponse({"error": note, "reason": refused.reason}, status=status)
        messages.error(request, note)
        return _consents_page(request, status=status)
    names = ", ".join(_choice_text(event.purpose, event.channel) for event in done.events)
    note = _("Restored: %(what)s") % {"what": names}
    if done.pending:
        note += " " + _("E-mail stays off until you open the new confirmation link we just sent you.")
    if _wants_json(request):
        switches = [
            {"key": f"{event.purpose_id}-{event.channel or 'none'}", "state": done.states[withdrawn]}
            for withdrawn, event in zip(done.states, done.events, strict=True)
        ]
        return JsonResponse({"message": note, "switches": switches})
    messages.success(request, note)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("privacy:consents")
    return redirect(target)


def _choice_text(purpose: Purpose, channel: str) -> str:
    """A switch's name as the consents page shows it: "Marketing messages · SMS"."""
    label = str(Channel(channel).label) if channel else ""
    return f"{purpose.display_name} · {label}" if label else purpose.display_name


@require_POST
@privacy_page()
def withdraw_everything(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    brand_id = None
    if request.POST.get("brand"):
        brands = {b.pk for b in queries.brands_holding_data(member, queries.memberships(member))}
        try:
            brand_id = int(request.POST["brand"])
        except ValueError:
            raise Http404 from None
        if brand_id not in brands:
            raise Http404
    done = rights.withdraw_all(
        member=member, account=request.privacy_account, evidence=_evidence(request), brand_id=brand_id
    )
    count = done.outcome.get("withdrawn", 0)
    if count:
        note = _("Done: every consent is withdrawn (%(count)s choices).") % {"count": count}
        token = choices.undo_token(queries.withdrawals_of(done))
        messages.success(request, undo_offers.with_undo(request, note, token, reverse("privacy:consents")))
    else:
        messages.info(request, _("Nothing to withdraw: no consent was on."))
    return redirect("privacy:consents")


@never_cache
@require_http_methods(["GET", "POST"])
@privacy_page()
def preferences(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    brands = face.first(request, queries.brands_holding_data(member, queries.memberships(member)))
    current = queries.preferences(member)
    offered = queries.consented_channels(member)
    forms_by_brand = {
        b.pk: PreferenceForm(
            prefix=f"b{b.pk}", initial=PreferenceForm.initial_from(current.get(b.pk)), offered=offered.get(b.pk, set())
        )
        for b in brands
    }
    status = 200
    if request.method == "POST":
        try:
            brand_id = int(request.POST.get("brand", ""))
        except ValueError:
            raise Http404 from None
        brand = next((b for b in brands if b.pk == brand_id), None)
        if brand is None:
            raise Http404
        form = PreferenceForm(
            request.POST, prefix=f"b{brand.pk}", initial=PreferenceForm.initial_from(current.get(brand.pk)),
            offered=offered.get(brand.pk, set()),
        )  # fmt: skip
        forms_by_brand[brand.pk] = form
        if form.is_valid():
            try:
                services.update_preferences(
                    member=member, brand=brand, source_type=SourceType.PRIVACY_CENTER,
                    source_ref=f"account:{request.privacy_account.pk}", **form.cleaned_data,
                )  # fmt: skip
            except ConsentError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Saved your preferences for %(brand)s.") % {"brand": brand.public_name})
                return redirect("privacy:preferences")
        status = 400
    sections = [{"brand": b, "form": forms_by_brand[b.pk]} for b in brands]
    return _render(request, "privacy/preferences.html", {"sections": sections, "brands": brands}, status=status)


@never_cache
@require_GET
@privacy_page()
def history(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    before, used_before = request.GET.get("before", ""), request.GET.get("used_before", "")
    events = timeline.events(member, before=int(before) if before.isdigit() else None)
    usage = timeline.usage(member, before=int(used_before) if used_before.isdigit() else None)
    context = {
        "days": timeline.by_day(timeline.timeline(events, timeline.states_before(member, events))),
        "usage": usage,
        "more": events[-1].pk if len(events) == timeline.HISTORY_LIMIT else None,
        "more_usage": usage[-1]["id"] if len(usage) == timeline.HISTORY_LIMIT else None,
    }
    return _render(request, "privacy/history.html", context)


@never_cache
@require_GET
@privacy_page()
def receipt(request: HttpRequest, event_id: int, fmt: str = "html") -> HttpResponse:
    event = queries.own_event(member_for_request(request), event_id)
    if event is None:
        raise Http404
    if fmt == "json":
        body = json.dumps(receipts.receipt_for(event), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{receipts.receipt_filename(event)}"'
        return response
    json_url = reverse("privacy:receipt_json", args=[event.pk])
    back_url = reverse("privacy:history")
    return HttpResponse(receipts.render_receipt_html(event, json_url=json_url, passed_on=True, back_url=back_url))


@never_cache
@require_GET
@privacy_page()
def my_data(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    context = {"requests": queries.requests(member), "correction_form": CorrectionForm()}
    return _render(request, "privacy/data.html", context)


@require_POST
@privacy_page()
def export_data(request: HttpRequest) -> HttpResponse:
    done = rights.record_access_request(member=member_for_request(request), account=request.privacy_account)
    return redirect("privacy:download", request_id=done.pk)


@never_cache
@require_GET
@privacy_page()
def download(request: HttpRequest, request_id: int) -> HttpResponse:
    member = member_for_request(request)
    found = queries.own_request(member, request_id)
    if found is None or found.kind != DataSubjectRequest.Kind.ACCESS:
        raise Http404
    response = HttpResponse(export.build_zip(member), content_type="application/zip")
    stamp = timezone.localtime().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.zip"'
    return response


@require_POST
@privacy_page()
def request_correction(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    form = CorrectionForm(request.POST)
    if form.is_valid():
        try:
            rights.request_correction(
                member=member, account=request.privacy_account, details=form.cleaned_data["details"]
            )
        except rights.RequestError as exc:
            form.add_error("details", str(exc))
        else:
            messages.success(request, _("Thank you. We received your correction request."))
            return redirect("privacy:data")
    context = {"requests": queries.requests(member), "correction_form": form}
    return _render(request, "privacy/data.html", context, status=400)


@never_cache
@require_http_methods(["GET", "POST"])
@privacy_page()
def delete(request: HttpRequest) -> HttpResponse:
    member = member_for_request(request)
    form = DeletionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        done = rights.request_deletion(member=member, account=request.privacy_account)
        logout(request)
        return _render(request, "privacy/deleted.html", {"request_obj": done, "member": None})
    status = 400 if request.method == "POST" else 200
    return _render(request, "privacy/delete.html", {"form": form}, status=status)


@require_POST
def set_time_zone(request: HttpRequest) -> HttpResponse:
    """The footer's time-zone form: a cookie, so it works before signing in too."""
    name = timezones.valid(request.POST.get("time_zone", ""))
    if name is None:
        return HttpResponseBadRequest(_("Unknown time zone. Choose one from the list."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("privacy:overview")
    response = redirect(target)
    timezones.remember(response, name)
    return response

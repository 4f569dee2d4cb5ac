"""The privacy officer's "Record consent given on paper" page and the scans it keeps.

The ledger is never edited in the admin; this page adds to it the one way every source
does (``services.record_paper_consent`` → ``record_consents``), for staff holding
``consent.record_paper_consent``, for their own brands only. A scan is opened from the
event's receipt page, by staff of the event's brand who may see personal data; each
opening is audited. Mounted by ``ConsentEventAdmin.get_urls``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from cdp import audit
from cdp.admin_scope import scoped
from members.masking import audit_pii_view, can_view_pii
from members.models import Brand

from .. import scans, services
from ..forms_paper import BrandChoiceForm, PaperConsentForm
from ..models import ConsentEvent

PERMISSION = "consent.record_paper_consent"


def paper_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """For ``ConsentEventAdmin.get_urls`` (before the default ``<path:object_id>/``)."""
    site = model_admin.admin_site

    def record(request: HttpRequest) -> HttpResponse:
        return paper_view(model_admin, request)

    def scan(request: HttpRequest, object_id: int) -> HttpResponse:
        return scan_view(model_admin, request, object_id)

    return [
        path("paper/", site.admin_view(record), name="consent_consentevent_paper"),
        path("<int:object_id>/scan/", site.admin_view(scan), name="consent_consentevent_scan"),
    ]


def _brand(request: HttpRequest, brands: Any) -> Brand | None:
    """The brand the form is for: the only one the staff member has, or the one chosen."""
    wanted = request.GET.get("brand") or request.POST.get("brand")
    if wanted:
        if not str(wanted).isdigit():
            raise Http404
        return get_object_or_404(brands, pk=int(wanted))
    found = list(brands[:2])
    return found[0] if len(found) == 1 else None


def paper_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    brands = scoped(Brand.objects.order_by("name"), request.user)
    brand = _brand(request, brands)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": _("Record consent given on paper"),
        "opts": ConsentEvent._meta,
        "brand": brand,
    }
    if brand is None:
        context["brand_form"] = BrandChoiceForm(brands=brands)
        return TemplateResponse(request, "admin/consent/consentevent/paper.html", context)
    form = PaperConsentForm(
        request.POST or None, request.FILES or None, brand=brand, initial={"signed_on": timezone.localdate()}
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                with audit.acting_as(audit.user_actor(request.user, audit.client_ip(request))):
                    done = services.record_paper_consent(
                        brand=brand, store=data["store"], choices=data["choices"], signed_on=data["signed_on"],
                        signed_at=data["signed_at"], notice=data["notice"], upload=data["scan"], scan=form.scan,
                        member=data["member"], phone=data["phone"] if data["member"] is None else "",
                        store_member_id=data["store_member_id"], by_guardian=data["by_guardian"],
                        reference=data["reference"],
                    )  # fmt: skip
            except services.PaperConsentError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                _done_message(request, done)
                url = reverse("admin:consent_consentevent_changelist")
                return HttpResponseRedirect(f"{url}?member={done.member.pk}")
        status = 400
    context.update({"form": form, "media": model_admin.media + form.media})
    return TemplateResponse(request, "admin/consent/consentevent/paper.html", context, status=status)


def _done_message(request: HttpRequest, done: services.PaperConsent) -> None:
    if not done.created:
        messages.warning(request, _("This form was recorded before: nothing new was stored."))
        return
    messages.success(
        request,
        ngettext(
            "%(count)d choice from the paper form is in the ledger, with the scan as evidence.",
            "%(count)d choices from the paper form are in the ledger, with the scan as evidence.",
            done.created,
        )
        % {"count": done.created},
    )


def scan_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int) -> HttpResponse:
    """The kept scan of an event recorded from a paper form. ⚑ Brand wall: the ledger's own
    (scoped) queryset finds the event, so another brand's staff get a 404."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    event = model_admin.get_queryset(request).filter(pk=object_id).select_related("member").first()
    scan = scans.scan_of(event.evidence) if event is not None else None
    if event is None or scan is None:
        raise Http404
    if not can_view_pii(request.user):
        raise PermissionDenied  # a signed form shows the person's name, phone and signature
    handle = scans.open_scan(scan["file"])
    if handle is None:
        raise Http404  # erased with the person's data; the ledger keeps its SHA-256
    audit_pii_view("consent_consentevent_scan", member=event.member, event=event.pk)
    suffix = str(scan["file"]).rsplit(".", 1)[-1]
    response = FileResponse(handle, content_type=scan["type"], filename=f"consent-scan-{event.pk}.{suffix}")
    response["Cache-Control"] = "private, no-store"
    return response


def scan_link(request: HttpRequest, event: ConsentEvent) -> dict[str, Any] | None:
    """What the admin's receipt page shows of the event's scan, for staff who may open it."""
    scan = scans.scan_of(event.evidence)
    if scan is None or not can_view_pii(request.user):
        return None
    return {
        "url": reverse("admin:consent_consentevent_scan", args=[event.pk]),
        "sha256": scan["sha256"],
        "type": str(scan.get("type", "")).rsplit("/", 1)[-1].upper(),
        "kib": max(1, round(int(scan.get("bytes", 0)) / 1024)),
        "state": scans.scan_state(scan),
    }

"""The brand's entry link and logo (``privacy.face``): the two pages that exist before anyone signs in."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from PIL import Image, UnidentifiedImageError

from members.brand_face import LOGO_FORMATS
from members.models import Brand

from . import face

LOGO_MAX_AGE = 24 * 3600


@require_GET
def enter(request: HttpRequest, code: str) -> HttpResponse:
    """``/privacy/b/<code>/``: the privacy center in this brand's colours from now on, then the page asked for."""
    brand = get_object_or_404(Brand, code=code)
    target = request.GET.get("next", "")
    if not target.startswith("/privacy/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("privacy:overview")
    response = redirect(target)
    face.remember(response, brand, secure=request.is_secure())
    return response


@require_GET
def logo(request: HttpRequest, code: str) -> HttpResponse:
    """The brand's logo, with the type its content has (checked again: the file is outside our hands once stored)."""
    brand = get_object_or_404(Brand.objects.only("code", "logo"), code=code)
    if not brand.logo or not default_storage.exists(brand.logo.name):
        raise Http404
    handle = default_storage.open(brand.logo.name, "rb")
    try:
        with Image.open(handle) as image:
            kind = image.format
    except (UnidentifiedImageError, OSError):
        handle.close()
        raise Http404 from None
    if kind not in LOGO_FORMATS:
        handle.close()
        raise Http404
    handle.seek(0)
    response = FileResponse(handle, content_type=LOGO_FORMATS[kind])
    response["Cache-Control"] = f"public, max-age={LOGO_MAX_AGE}"
    return response

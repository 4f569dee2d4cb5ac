"""The brand's face in the privacy center: whose logo, name, accent colour and support
contact a person sees, and whose signature their sign-in texts carry.

A person arrives from a brand: by its own host (``Brand.privacy_host``, e.g.
privacy.lotus.example.com) or by its entry link ``/privacy/b/<code>/`` (printed on receipts
and QR codes at the counter, sent in texts), which remembers the brand in a cookie so the
sign-in pages already wear it. Signed in, a person whose data only one brand holds sees that
brand. Otherwise the pages are the group's (no brand face). Whatever the face, the pages
list and manage every brand of the group that holds the person's data, this one first.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from consent.mail import brand_color
from members.models import Brand

COOKIE = "privacy_brand"
COOKIE_MAX_AGE = 365 * 24 * 3600
_UNSET = object()


def _host(request: HttpRequest) -> str:
    return request.get_host().rsplit(":", 1)[0].lower() if "]" not in request.get_host() else ""


def brand_for(request: HttpRequest | None) -> Brand | None:
    """The brand whose face this request wears by host or entry link; one query, once per request."""
    if request is None:
        return None
    found = getattr(request, "_privacy_face", _UNSET)
    if found is not _UNSET:
        return found  # type: ignore[return-value]
    code = request.COOKIES.get(COOKIE, "")[:50]
    host = _host(request)
    if host not in brand_hosts():
        host = ""
    brand = None
    if host or code:
        wanted = Q(pk__in=[])
        if host:
            wanted |= Q(privacy_host=host)
        if code:
            wanted |= Q(code=code)
        candidates = list(Brand.objects.filter(wanted))
        # A brand's own host outranks a cookie left by another brand's link.
        brand = next((b for b in candidates if b.privacy_host == host), None) or next(
            (b for b in candidates if b.code == code), None
        )
    request._privacy_face = brand  # type: ignore[attr-defined]
    return brand


HOSTS_TTL = 60.0
_hosts: tuple[float, frozenset[str]] = (0.0, frozenset())


def brand_hosts() -> frozenset[str]:
    """The hosts brands have of their own, known to this process for ``HOSTS_TTL`` seconds:
    most requests come to the group's host, and should not each ask the database whether
    a brand owns it. A new host is recognised within a minute (at once in this process,
    ``forget_hosts`` runs when a brand is saved)."""
    global _hosts
    checked, hosts = _hosts
    if time.monotonic() - checked > HOSTS_TTL:
        hosts = frozenset(Brand.objects.exclude(privacy_host=None).values_list("privacy_host", flat=True))
        _hosts = (time.monotonic(), hosts)
    return hosts


def forget_hosts(**_kwargs: Any) -> None:
    global _hosts
    _hosts = (0.0, frozenset())


def for_page(request: HttpRequest, brands: Iterable[Brand] = ()) -> Brand | None:
    """The face of a signed-in page: by host or link, else the only brand holding the person's data."""
    brand = brand_for(request)
    if brand is not None:
        return brand
    brands = list(brands)
    return brands[0] if len(brands) == 1 else None


def first(request: HttpRequest, brands: list[Brand]) -> list[Brand]:
    """``brands`` with the face's brand first: the person came from it."""
    face = brand_for(request)
    if face is None:
        return brands
    return sorted(brands, key=lambda b: b.pk != face.pk)


def remember(response: HttpResponse, brand: Brand, *, secure: bool) -> None:
    response.set_cookie(COOKIE, brand.code, max_age=COOKIE_MAX_AGE, samesite="Lax", secure=secure, httponly=True)


def sms_prefix(request: HttpRequest | None) -> str:
    """【signature】 for a text sent during this request: the face's, else the group's (``SMS_SIGNATURE``)."""
    brand = brand_for(request)
    signature = (brand.sms_signature if brand is not None else "") or settings.SMS_SIGNATURE
    return f"【{signature}】" if signature else ""


def logo_url(brand: Brand) -> str:
    if not brand.logo:
        return ""
    # Every upload gets a new file name, hence a new address: browsers may keep one for a day.
    version = hashlib.sha256(brand.logo.name.encode()).hexdigest()[:12]
    return reverse("privacy:brand_logo", args=[brand.code]) + f"?v={version}"


def face(brand: Brand | None) -> dict[str, Any]:
    """What the templates show: ``{}`` for the group's own pages."""
    if brand is None:
        return {}
    return {
        "brand": brand,
        "name": brand.public_name,
        "logo": logo_url(brand),
        "color": brand_color(brand),
        "phone": brand.support_phone,
        "email": brand.support_email or brand.privacy_email,
    }


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``face`` by host or entry link, looked up only when a
    page shows it. Views that know the person's brands pass their own (``for_page``)."""
    if not request.path.startswith(("/privacy/", "/consent/")):
        return {}
    return {"face": SimpleLazyObject(lambda: face(brand_for(request)))}

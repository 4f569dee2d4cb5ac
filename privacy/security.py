"""Answers every privacy center page shares: a Content-Security-Policy (Django 5.2 has
none built in), and the 429 answer of a request over a limit (``privacy.limits``).

Scripts and everything else come only from our own origin: no CDN, no inline script, no
framing. Inline *styles* stay allowed: receipts are one HTML document shared with mail
(mail clients need inline styles), and brand colours are set per page. Styles cannot run
code, which is what the policy is for.

A request over a limit raises allauth's ``RateLimited`` (``limits.TooManyRequests`` adds
why and for how long) from a form, a view or the SMS adapter; the middleware turns it into
the 429 page in the person's language, or, for scripts and the API, a problem+json body,
both with ``Retry-After``. allauth's own 429s (its ``rate_limit`` decorator, e.g. on
changing the phone) render ``templates/429.html``, the same page.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from allauth.core.exceptions import RateLimited
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cdp.api.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

DEFAULT_RETRY_AFTER = 60


class ContentSecurityPolicyMiddleware:
    """The policy header on every page, and the 429 answer (see the module's docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The admin and the API docs keep their own needs (Swagger UI runs inline code).
        if not request.path.startswith(("/admin/", "/api/")):
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, RateLimited):
            return too_many_requests(request, exception)
        return None


def _reason(exception: Exception | None) -> str:
    reason = getattr(exception, "reason", "")
    if reason == "code_requests":
        return _("Too many codes were asked for.")
    if reason == "wrong_codes":
        return _("Too many wrong codes were entered.")
    if reason == "sms_budget":
        return _("We cannot send more text messages right now.")
    return _("There were too many attempts.")


def _wants_json(request: HttpRequest) -> bool:
    if request.path.startswith("/api/") or request.headers.get("X-Requested-With") == "fetch":
        return True
    accept = request.headers.get("Accept", "")
    return "json" in accept and "html" not in accept


def too_many_requests(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """429, as a page or as problem+json. Also usable as ``handler429`` (allauth's
    ``respond_429`` looks for one in the root URLconf)."""
    retry_after = getattr(exception, "retry_after", None) or DEFAULT_RETRY_AFTER
    minutes = max(math.ceil(retry_after / 60), 1)
    reason = _reason(exception)
    wait = ngettext(
        "For your safety, please wait %(minutes)s minute and try again.",
        "For your safety, please wait %(minutes)s minutes and try again.",
        minutes,
    ) % {"minutes": minutes}
    response: HttpResponse
    if _wants_json(request):
        body = {
            "type": PROBLEM_BASE + "rate-limited",
            "title": _("Too many requests."),
            "status": 429,
            "detail": f"{reason} {wait}",
            "retry_after": retry_after,
        }
        response = JsonResponse(
            body, status=429, content_type=PROBLEM_CONTENT_TYPE, json_dumps_params={"ensure_ascii": False}
        )
    else:
        context = {"reason": reason, "wait": wait, "retry_after": retry_after}
        response = render(request, "account/429.html", context, status=429)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response

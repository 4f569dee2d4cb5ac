from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET

from . import health


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitoring: 200 while the database answers, even if the
    cache, the broker or the outbox are degraded (named in ``degraded``); 503 when the
    database is down (``cdp/health.py``)."""
    status, body = health.report()
    return JsonResponse(body, status=status)

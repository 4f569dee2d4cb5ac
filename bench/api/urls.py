"""The real URLs plus a minimal DRF endpoint that reads one row by primary key, measured
next to ``/healthz`` (the anchor) for reference. It goes through the same API-key
authentication, scope check and throttle as every endpoint, so the comparison isolates
what the check and the member read themselves cost."""

from __future__ import annotations

from django.urls import path
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from cdp.api.views import ApiView
from cdp.urls import handler404, handler500  # noqa: F401
from cdp.urls import urlpatterns as cdp_urlpatterns
from members.models import Member


class RowView(ApiView):
    required_scope = "members:read"

    def get(self, request: Request, pk: int) -> Response:
        row = Member.objects.filter(pk=pk).values("pk", "status", "name").first()
        if row is None:
            raise NotFound()
        return Response(row)


urlpatterns = [path("api/bench/row/<int:pk>/", RowView.as_view()), *cdp_urlpatterns]

"""``POST /api/v1/platform-events/<store code>/``: where a store's platform pushes its
membership events. No API key: the push is signed by the platform with the store's
shared secret, and the adapter of the store's connection checks it (docs/platforms.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cdp.api.errors import ProblemSerializer, problem
from cdp.api.exceptions import RequestTooLarge

from . import adapters, service
from .models import PlatformConnection


class PushResult(serializers.Serializer):
    event_id = serializers.CharField(help_text="The platform's id of the event (WeChat: derived, see the docs).")
    kind = serializers.ChoiceField(choices=["joined", "updated", "ended"])
    outcome = serializers.ChoiceField(
        choices=["pending", "applied", "ignored", "failed"],
        help_text="`pending`: stored, applied by a worker right after the answer. A push sent again answers what "
        "its events became: `applied`, `ignored` (e.g. the end of a membership nobody knew) or `failed`.",
    )
    detail = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="Pushed before: answered as the first time, nothing applied.")


class PushOutput(serializers.Serializer):
    results = PushResult(many=True)
    skipped = serializers.ListField(
        child=serializers.CharField(), help_text="Event types in the push that are not about membership."
    )


def _problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


class PlatformEventsView(APIView):
    authentication_classes: list[Any] = []  # the platform's signature is the authentication
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="platform_events_push",
        summary="A store's platform pushes membership events (join, update, unbind)",
        description="Signed by the platform with the store's shared secret, per the adapter of the store's "
        "connection: Tmall/Taobao, Douyin shop, WeChat member cards, or Standard Webhooks for any other platform "
        "(docs/platforms.md). Idempotent on the platform's event id. The events are stored and answered at once, "
        "then applied in the order they arrived: joining records the membership agreement (never marketing "
        "consent); unbinding ends the membership and withdraws the consents that rested on it.",
        request=OpenApiTypes.OBJECT,
        responses={
            200: PushOutput,
            400: _problem("Signed, but the content cannot be read: `errors` names the field."),
            401: _problem("The signature is missing, does not match the store's secret, or is too old."),
            404: _problem("No active platform connection for this store code."),
            413: _problem("The body is larger than API_MAX_REQUEST_BYTES."),
        },
        auth=[],
    )
    def post(self, request: Request, store: str) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_REQUEST_BYTES:
            raise RequestTooLarge(f"The body is larger than {settings.API_MAX_REQUEST_BYTES} bytes.")
        connection = (
            PlatformConnection.objects.select_related("store__brand", "agreement_purpose", "agreement_notice")
            .filter(store__code=store, is_active=True)
            .first()
        )
        if connection is None:
            raise NotFound(f"No platform connection for store {store!r}.")
        push = adapters.Push(
            headers={name.lower(): value for name, value in request.headers.items()},
            query={name: request.query_params.get(name, "") for name in request.query_params},
            body=request.body,
        )
        try:
            reading = adapters.read(connection, push)
            received = service.receive_push(connection, reading.events)
        except adapters.SignatureError as exc:
            return problem(401, str(exc), title="The push is not signed with this store's secret.")
        except adapters.PayloadError as exc:
            return problem(400, f"{exc.field}: {exc.message}", errors=[{"field": exc.field, "message": exc.message}])
        body = {"results": [result.as_dict() for result in received], "skipped": reading.skipped}
        return Response(PushOutput(body).data)


urlpatterns = [
    path("platform-events/<str:store>/", PlatformEventsView.as_view(), name="api-platform-events"),
]

"""Webhook subscriptions over the API: list, create (the signing secret is answered once),
delete. Needs the ``webhooks:manage`` scope; a key manages its own brand's only."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cdp.api.errors import problems
from cdp.api.views import ApiView
from cdp.models import ApiKeyScope
from members.api import _validated

from . import services
from .models import EventType, Subscription


class SubscriptionInput(serializers.Serializer):
    url = serializers.URLField(max_length=500, help_text="Where to POST events (https; public addresses only).")
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values), allow_empty=False, max_length=len(EventType.values)
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SubscriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.values))
    description = serializers.CharField()
    created_at = serializers.DateTimeField()


class SubscriptionCreated(SubscriptionOutput):
    secret = serializers.CharField(
        help_text="The signing secret. Shown only now: keep it to verify `X-CDP-Signature` (see the README)."
    )


class SubscriptionList(serializers.Serializer):
    results = SubscriptionOutput(many=True)


class WebhooksView(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="webhooks_list",
        summary="The brand's webhook subscriptions",
        responses={200: SubscriptionList, **problems()},
    )
    def get(self, request: Request) -> Response:
        subscriptions = Subscription.objects.filter(brand_id=self.key.brand_id, is_active=True).order_by("pk")
        return Response(SubscriptionList({"results": list(subscriptions)}).data)

    @extend_schema(
        operation_id="webhooks_create",
        summary="Subscribe a URL to events",
        description="Events: `consent.changed`, `member.merged`, `member.erased`, `segment.built`. Each delivery is "
        "a JSON POST signed with `X-CDP-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, t + '.' + body)>`; "
        "payloads carry a per-member `sequence` so stale ones can be dropped.",
        request=SubscriptionInput,
        responses={201: SubscriptionCreated, **problems(400)},
    )
    def post(self, request: Request) -> Response:
        data = _validated(SubscriptionInput, request.data)
        try:
            subscription, secret = services.create_subscription(
                brand=self.key.brand,
                url=data["url"],
                events=data["events"],
                description=data["description"],
            )  # the API key is the current actor (cdp.api.views)
        except services.WebhookError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        body = {**SubscriptionOutput(subscription).data, "secret": secret}
        return Response(SubscriptionCreated(body).data, status=status.HTTP_201_CREATED)


class WebhookView(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_MANAGE

    @extend_schema(
        operation_id="webhooks_delete",
        summary="Stop a subscription",
        description="Pending retries are dropped; the delivery log stays.",
        responses={204: None, **problems(404)},
    )
    def delete(self, request: Request, subscription_id: int) -> Response:
        subscription = Subscription.objects.filter(
            pk=subscription_id, brand_id=self.key.brand_id, is_active=True
        ).first()
        if subscription is None:
            raise NotFound("The brand has no such subscription.")
        services.delete_subscription(subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("webhooks/", WebhooksView.as_view(), name="api-webhooks"),
    path("webhooks/<int:subscription_id>/", WebhookView.as_view(), name="api-webhook"),
]

"""REST endpoints of segments: list the brand's segments, ask for a build, read the
current build's members page by page.

⚑ Consent is checked again when members are read (``contactable_q``: consent, preferences
and reachability, as exports do), so a withdrawal or a changed preference after the build
keeps the person out; every member returned
gets a DataUsage row (context ``api_segment_read``), written with one INSERT per page.
"""

from __future__ import annotations

from typing import Any

from django.urls import path, reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cdp.api.errors import problems
from cdp.api.exceptions import Conflict
from cdp.api.pagination import IntegerCursorPagination
from cdp.api.views import ApiView
from cdp.models import ApiKey, ApiKeyScope
from consent.models import NO_CHANNEL, Channel
from consent.queries import contactable_q
from members.brand_view import brand_columns

from . import exports, services
from .models import Segment, SegmentBuild
from .queries import snapshot_members, with_contact


def segment_for_key(key: ApiKey, slug: str) -> Segment:
    segment = (
        Segment.objects.select_related("purpose", "current_build").filter(brand_id=key.brand_id, slug=slug).first()
    )
    if segment is None:
        raise NotFound("The brand has no segment with this slug.")
    return segment


def build_url(request: Request, build: SegmentBuild, slug: str) -> str:
    return request.build_absolute_uri(reverse("api-segment-build", args=[slug, build.pk]))


class BuildOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=SegmentBuild.Status.values)
    requested_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    matched = serializers.IntegerField(allow_null=True, help_text="Matched by the rules.")
    consented = serializers.IntegerField(allow_null=True, help_text="… with consent for the purpose and channel.")
    under_cap = serializers.IntegerField(allow_null=True, help_text="… under the frequency cap.")
    reachable = serializers.IntegerField(allow_null=True, help_text="… reachable on the channel.")
    final = serializers.IntegerField(allow_null=True, help_text="People in the build.")
    error = serializers.CharField()


class SegmentOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    purpose = serializers.CharField(source="purpose.code")
    channel = serializers.CharField()
    schedule = serializers.CharField()
    current_build = BuildOutput(allow_null=True, help_text="The build readers see; null before the first.")


class SegmentList(serializers.Serializer):
    results = SegmentOutput(many=True)


class BuildAccepted(BuildOutput):
    url = serializers.URLField(help_text="Poll this for the build's status.")
    created = serializers.BooleanField(help_text="False: a build was already queued or running; this is that one.")


class SegmentMemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    contact = serializers.CharField(help_text="The contact point for the channel (phone, e-mail, unionid…).")
    city = serializers.CharField()
    locale = serializers.CharField()
    lifecycle_stage = serializers.CharField()


class SegmentMemberPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    build = serializers.IntegerField()
    channel = serializers.CharField()
    results = SegmentMemberOutput(many=True)


class SegmentsView(ApiView):
    required_scope = ApiKeyScope.SEGMENTS_READ

    @extend_schema(
        operation_id="segments_list", summary="The brand's segments", responses={200: SegmentList, **problems()}
    )
    def get(self, request: Request) -> Response:
        segments = (
            Segment.objects.filter(brand_id=self.key.brand_id)
            .select_related("purpose", "current_build")
            .order_by("slug")
        )
        return Response(SegmentList({"results": list(segments)}).data)


class SegmentBuildsView(ApiView):
    required_scope = ApiKeyScope.SEGMENTS_READ

    @extend_schema(
        operation_id="segments_build",
        summary="Build a segment now",
        description="Queues a build (or joins the one already queued or running) and answers 202 with its URL "
        "in `url` and `Location`. A `segment.built` webhook follows when it succeeds.",
        request=None,
        responses={202: BuildAccepted, **problems(404, 409)},
    )
    def post(self, request: Request, slug: str) -> Response:
        segment = segment_for_key(self.key, slug)
        try:
            build, created = services.request_build(segment)  # the API key is the current actor
        except services.BuildError as exc:
            raise Conflict(str(exc)) from None
        url = build_url(request, build, slug)
        body = {**BuildOutput(build).data, "url": url, "created": created}
        return Response(BuildAccepted(body).data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class SegmentBuildView(ApiView):
    required_scope = ApiKeyScope.SEGMENTS_READ

    @extend_schema(
        operation_id="segments_build_retrieve", summary="A build", responses={200: BuildOutput, **problems(404)}
    )
    def get(self, request: Request, slug: str, build_id: int) -> Response:
        segment = segment_for_key(self.key, slug)
        build = SegmentBuild.objects.filter(segment=segment, pk=build_id).first()
        if build is None:
            raise NotFound("This segment has no such build.")
        return Response(BuildOutput(build).data)


class MemberCursor(IntegerCursorPagination):
    ordering = "pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


BRAND_COLUMNS = ("name", "city", "locale", "lifecycle_stage")


class SegmentMembersView(ApiView):
    required_scope = ApiKeyScope.SEGMENTS_READ

    @extend_schema(
        operation_id="segments_members",
        summary="The members of the segment's current build, with consent checked now",
        description="Cursor-paginated (follow `next`). People who withdrew consent, changed their preferences "
        "(channel, pause, weekly limit) or became unreachable since the build are left out. Every person returned is logged as a use of their data (DataUsage). `channel` "
        "defaults to the segment's; another channel of the segment's purpose re-checks consent for that channel.",
        parameters=[
            OpenApiParameter("channel", str, enum=[NO_CHANNEL, *Channel.values]),
            OpenApiParameter("cursor", str, description="From `next` or `previous`."),
            OpenApiParameter("page_size", int, description="1–1000, default 100."),
        ],
        responses={200: SegmentMemberPage, **problems(400, 404, 409)},
    )
    def get(self, request: Request, slug: str) -> Response:
        segment = segment_for_key(self.key, slug)
        channel = request.query_params.get("channel", segment.channel)
        if channel not in (NO_CHANNEL, *Channel.values) or not segment.purpose.allows_channel(channel):
            raise ValidationError({"channel": [f"The segment's purpose does not use channel {channel!r}."]})
        build = segment.current_build
        if build is None:
            raise Conflict("The segment has not been built yet: POST to its builds first.")
        # What can_contact decides, now: consent, the person's preferences (channel chosen,
        # not paused, under their weekly limit) and reachability.
        allowed = contactable_q(segment.brand_id, segment.purpose, channel)
        members = with_contact(snapshot_members(build.pk).filter(allowed), channel).values(
            "pk", "name", "contact", "city", "locale", "lifecycle_stage"
        )
        paginator = MemberCursor()
        try:
            page = paginator.paginate_queryset(members, request, view=self)
        except NotFound:
            raise ValidationError({"cursor": ["Not a cursor this endpoint gave out."]}) from None
        # ⚑ Brand wall: the brand's own profile values and stage, not the golden record's.
        seen = brand_columns([row["pk"] for row in page or []], segment.brand_id)
        rows: list[dict[str, Any]] = [
            {**row, **{k: seen[row["pk"]][k] for k in BRAND_COLUMNS}, "id": row["pk"]} for row in page or []
        ]
        exports.record_segment_read(
            segment, channel=channel, member_ids=[row["id"] for row in rows], reader=f"API key {self.key.prefix}"
        )
        body = {
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "build": build.pk,
            "channel": channel,
            "results": rows,
        }
        return Response(SegmentMemberPage(body).data)


urlpatterns = [
    path("segments/", SegmentsView.as_view(), name="api-segments"),
    path("segments/<slug:slug>/builds/", SegmentBuildsView.as_view(), name="api-segment-builds"),
    path("segments/<slug:slug>/builds/<int:build_id>/", SegmentBuildView.as_view(), name="api-segment-build"),
    path("segments/<slug:slug>/members/", SegmentMembersView.as_view(), name="api-segment-members"),
]

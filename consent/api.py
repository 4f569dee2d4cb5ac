"""REST endpoints of the consent domain: record consent events (one or a batch), check
whether a person may be contacted, read and change preferences.

The check is the hot endpoint: one query finds the purpose and the person together, then
``can_contact`` decides in at most three. A batch resolves its people, purposes and notices
in a few set-based queries and appends each event with the ledger's one prepared statement.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cdp.api.errors import Unprocessable, problems
from cdp.api.views import ApiView
from cdp.models import ApiKey, ApiKeyScope
from members.api import _validated, lookup_identity, member_for_key, store_for
from members.identities import RecordError, normalize_email, normalize_phone, normalize_unionid
from members.models import Identity, IdentityKind, Member, StoreMembership

from . import services
from .models import NO_CHANNEL, Action, Channel, Notice, Preference, Purpose, SourceType
from .queries import Reason, can_contact
from .validation import MAX_MESSAGE_ID, QUIET_TIME_MESSAGE, QUIET_TIME_PATTERN, format_quiet_time, parse_quiet_time

CHANNEL_CHOICES = [NO_CHANNEL, *Channel.values]


def _in_brand(brand_id: int, member_ref: str = "pk") -> Exists:
    return Exists(StoreMembership.objects.filter(member=OuterRef(member_ref), store__brand_id=brand_id))


# --- Consent check ---------------------------------------------------------------------------


class CheckOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.ChoiceField(
        choices=[getattr(Reason, name) for name in vars(Reason) if name.isupper()],
        help_text="Why, the first check that fails: `erased`, `no_consent` (also when the brand knows nobody "
        "with this identifier), `withdrawn`, `pending_confirmation`, `minor`; then the person's preferences: "
        "`preference_channel` (not a channel they chose), `paused` (0 messages a week), `frequency_cap` (weekly "
        "limit reached), `quiet_hours` (only with `at`); then `unreachable`, `suppressed`.",
    )
    as_of = serializers.DateTimeField(allow_null=True, help_text="When the deciding consent event happened.")


# How far from now the time of sending may be: quiet hours are a time of day and the weekly
# count runs back from it, so a date years away says nothing (and could overflow).
_AT_RANGE = dt.timedelta(days=366)


def _time_of_sending(raw: str) -> dt.datetime | None:
    """The check's optional ``at``: an ISO 8601 date and time with its offset; 400 otherwise."""
    if not raw:
        return None
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValidationError({"at": ["Give a date and time with its offset, e.g. 2026-03-01T21:30:00+08:00 "
                                      "(write + as %2B in a URL) or 2026-03-01T13:30:00Z."]})  # fmt: skip
    if abs(at - timezone.now()) > _AT_RANGE:
        raise ValidationError({"at": ["Must be within a year of now."]})
    return at


# Purposes per (brand, code), per process, for a short while: the check is the hottest
# endpoint and purposes change rarely (a deactivated purpose stops answering within this).
_PURPOSE_TTL = 30.0
_purposes: dict[tuple[int, str], tuple[float, Purpose | None]] = {}


def active_purpose(brand_id: int, code: str) -> Purpose | None:
    now = time.monotonic()
    cached = _purposes.get((brand_id, code))
    if cached is not None and cached[0] > now:
        return cached[1]
    purpose = Purpose.objects.filter(brand_id=brand_id, code=code, is_active=True).first()
    if len(_purposes) > 10_000:
        _purposes.clear()
    _purposes[(brand_id, code)] = (now + _PURPOSE_TTL, purpose)
    return purpose


class ConsentCheckView(ApiView):
    required_scope = ApiKeyScope.CONSENT_READ

    @extend_schema(
        operation_id="consent_check",
        summary="May the brand contact this person for a purpose on a channel?",
        description="Identify the person by exactly one of `member`, `phone`, `email`, `unionid`. Default deny: "
        "no consent event means `allowed: false`. E-mail marketing needs a confirmed double opt-in. The person's "
        "preferences for the brand are obeyed too: a channel they did not choose, a pause, a weekly limit "
        "reached (counted from the contact log) and, when `at` gives the time of sending, their quiet hours. "
        "Answered by `can_contact` in one query after the key's (two for a member id).",
        parameters=[
            OpenApiParameter("purpose", str, required=True, description="Purpose code, e.g. `marketing`."),
            OpenApiParameter("channel", str, enum=CHANNEL_CHOICES, description="Empty for purposes without channel."),
            OpenApiParameter("member", int, description="Member id."),
            OpenApiParameter("phone", str),
            OpenApiParameter("email", str),
            OpenApiParameter("unionid", str),
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="When the message would be sent (with its offset, within a year of now). Only then are "
                "quiet hours checked; the weekly count runs back seven days from it (default: now).",
            ),
        ],
        responses={200: CheckOutput, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        code = params.get("purpose", "")
        channel = params.get("channel", NO_CHANNEL)
        if not code:
            raise ValidationError({"purpose": ["This parameter is required."]})
        if channel not in CHANNEL_CHOICES:
            raise ValidationError({"channel": [f"{channel!r} is not one of {', '.join(Channel.values)}."]})
        at = _time_of_sending(params.get("at", ""))
        brand_id = self.key.brand_id
        member_pk: int | None = None
        identity: tuple[str, str] | None = None
        if params.get("member"):
            if any(params.get(name) for name in ("phone", "email", "unionid")):
                raise ValidationError({"": ["Give exactly one of member, phone, email or unionid."]})
            try:
                member_pk = int(params["member"])
            except ValueError:
                raise ValidationError({"member": ["Must be a member id (a whole number)."]}) from None
            if not 0 < member_pk < 2**63:
                raise ValidationError({"member": ["Must be a member id (a whole number)."]})
        else:
            identity = lookup_identity(
                phone=params.get("phone", ""), email=params.get("email", ""), unionid=params.get("unionid", "")
            )
        purpose = active_purpose(brand_id, code)
        if purpose is None:
            raise ValidationError({"purpose": [f"The brand has no purpose {code!r}."]})
        if not purpose.allows_channel(channel):
            raise ValidationError({"channel": [f"Purpose {code!r} does not use channel {channel!r}."]})
        if member_pk is not None:
            # Another brand's member id answers like an unknown one (no "erased" hint).
            member_pk = (
                Member.objects.filter(pk=member_pk)
                .annotate(canonical=Coalesce("merged_into_id", "pk"))
                .filter(_in_brand(brand_id, "canonical"))
                .values_list("canonical", flat=True)
                .first()
            )
            if member_pk is None:
                return Response(CheckOutput({"allowed": False, "reason": "no_consent", "as_of": None}).data)
        # By identity, another brand's person has no consent state of this brand: no_consent.
        decision = can_contact(member_pk, brand_id, purpose, channel, identity=identity, at=at)
        body = {"allowed": decision.allowed, "reason": decision.reason, "as_of": decision.as_of}
        return Response(_CHECK_OUTPUT.to_representation(body))


# Output serializers keep no state of a request: the hot check reuses one rather than
# deep-copying its fields for every request.
_CHECK_OUTPUT = CheckOutput()


# --- Consent events ------------------------------------------------------------------------------


class ConfirmationInput(serializers.Serializer):
    """The proof of a double opt-in the source ran itself: all three, or it proves nothing."""

    confirmed_at = serializers.DateTimeField(required=False, help_text="When the person confirmed (with a time zone).")
    ip = serializers.IPAddressField(required=False, help_text="The IP address they confirmed from.")
    message_id = serializers.CharField(
        required=False, max_length=MAX_MESSAGE_ID, help_text="The Message-ID of the confirmation mail the source sent."
    )


class ConsentEventInput(serializers.Serializer):
    external_id = serializers.CharField(
        max_length=200, help_text="The source system's id of this event: sending it again stores nothing new."
    )
    member = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Member id.")
    phone = serializers.CharField(required=False, max_length=40)
    email = serializers.CharField(required=False, max_length=254)
    unionid = serializers.CharField(required=False, max_length=64)
    purpose = serializers.CharField(max_length=50, help_text="Purpose code.")
    channel = serializers.ChoiceField(choices=CHANNEL_CHOICES, required=False, default=NO_CHANNEL, allow_blank=True)
    action = serializers.ChoiceField(choices=Action.values)
    occurred_at = serializers.DateTimeField(help_text="When the person acted, at the source (with a time zone).")
    store = serializers.CharField(
        required=False, allow_blank=True, max_length=50, help_text="Store code; defaults to the key's store."
    )
    notice = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Id of the notice shown; default the current one."
    )
    evidence = serializers.DictField(required=False, help_text="IP, user agent, checkbox text…")
    by_guardian = serializers.BooleanField(required=False, default=False)
    confirmation = ConfirmationInput(
        required=False,
        help_text="E-mail grants only: the proof of a double opt-in the source ran itself (`confirmed_at`, `ip`, "
        "`message_id`, all three), kept in the evidence. With it the grant is stored as `confirmed`; without it "
        "as `requested` and the person is mailed a link to confirm. Action `confirmed` needs it (422 otherwise).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("member", "phone", "email", "unionid") if attrs.get(name)]
        if len(given) != 1:
            raise ValidationError("Identify the person with exactly one of member, phone, email or unionid.")
        try:
            if attrs.get("phone"):
                attrs["phone"] = normalize_phone(attrs["phone"])
            elif attrs.get("email"):
                attrs["email"] = normalize_email(attrs["email"])
            elif attrs.get("unionid"):
                attrs["unionid"] = normalize_unionid(attrs["unionid"])
        except RecordError as exc:
            raise ValidationError({given[0]: [exc.message]}) from None
        return attrs


class ConsentEventBatchInput(serializers.Serializer):
    events = ConsentEventInput(many=True, allow_empty=False, max_length=settings.API_MAX_BATCH)


class ConsentEventResult(serializers.Serializer):
    external_id = serializers.CharField()
    id = serializers.IntegerField(help_text="Ledger event id.")
    member = serializers.IntegerField()
    created = serializers.BooleanField(
        help_text="False: this external id was recorded before, or (an e-mail grant) the person's confirmation or "
        "their request of the last day answers it; `id` is that event."
    )
    action = serializers.ChoiceField(
        choices=Action.values,
        help_text="What the ledger holds: an e-mail grant is `requested` (a link to confirm is mailed to the person, "
        "at most one a day per brand) unless `confirmation` is given, then `confirmed`.",
    )
    state_changed = serializers.BooleanField(help_text="False for a late event older than the current choice.")


class ConsentEventBatchOutput(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    results = ConsentEventResult(many=True)


_IDENTIFIER_KIND = {"phone": IdentityKind.PHONE, "email": IdentityKind.EMAIL, "unionid": IdentityKind.WECHAT_UNIONID}


def _resolve_people(key: ApiKey, items: list[dict[str, Any]]) -> list[Member]:
    """The brand's member behind each item, in two queries for the whole batch; 400 naming
    every item whose person the brand does not know."""
    brand_id = key.brand_id
    wanted: dict[str, set[str]] = {}
    ids: set[int] = set()
    for item in items:
        if item.get("member"):
            ids.add(item["member"])
        for name, kind in _IDENTIFIER_KIND.items():
            if item.get(name):
                wanted.setdefault(kind, set()).add(item[name])
    by_identity: dict[tuple[str, str], int] = {}
    if wanted:
        identities = Identity.objects.none()
        for kind, values in wanted.items():
            identities = identities | Identity.objects.filter(kind=kind, value__in=values)
        by_identity = {
            (kind, value): member_id
            for kind, value, member_id in identities.filter(_in_brand(brand_id, "member_id")).values_list(
                "kind", "value", "member_id"
            )
        }
    canonical: dict[int, int] = {}
    if ids:
        canonical = dict(
            Member.objects.filter(pk__in=ids)
            .annotate(canonical=Coalesce("merged_into_id", "pk"))
            .filter(_in_brand(brand_id, "canonical"))
            .values_list("pk", "canonical")
        )
    errors: dict[str, Any] = {}
    refs: list[int] = []
    for index, item in enumerate(items):
        if item.get("member"):
            ref = canonical.get(item["member"])
            name = "member"
        else:
            name = next(n for n in _IDENTIFIER_KIND if item.get(n))
            ref = by_identity.get((_IDENTIFIER_KIND[name], item[name]))
        if ref is None:
            errors[f"{index}"] = {name: ["The brand has no member with this identifier."]}
        refs.append(ref or 0)
    if errors:
        raise ValidationError({"events": errors})
    members = Member.objects.only("pk", "status", "merged_into_id", "locale", "birth_date").in_bulk(set(refs))
    return [members[ref] for ref in refs]


class ConsentEventsView(ApiView):
    required_scope = ApiKeyScope.CONSENT_WRITE

    @extend_schema(
        operation_id="consent_events_record",
        summary="Record one consent event or a batch",
        description=f'Send one event object or `{{"events": [...]}}` (up to {settings.API_MAX_BATCH}). Idempotent '
        "on `external_id` (per brand). `occurred_at` is when the person acted at the source: an event older than "
        "the person's current choice is kept in the ledger but does not change the state. The person must be "
        "known to the brand (create them with `POST /api/v1/members/`). A batch is stored whole or not at all. "
        "E-mail needs double opt-in: an e-mail grant (`granted` or `requested`) is stored as `requested` and the "
        "person is mailed a link to confirm, unless `confirmation` proves a double opt-in the source ran itself; "
        "`confirmed` without that proof is refused with 422 naming the missing fields.",
        request=PolymorphicProxySerializer(
            component_name="ConsentEventsRequest",
            serializers=[ConsentEventInput, ConsentEventBatchInput],
            resource_type_field_name=None,
        ),
        responses={201: ConsentEventBatchOutput, 200: ConsentEventBatchOutput, **problems(400, 413, 422)},
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.data, dict) and "events" in request.data:
            items = _validated(ConsentEventBatchInput, request.data)["events"]
        else:
            items = [_validated(ConsentEventInput, request.data)]
        key = self.key
        brand = key.brand
        members = _resolve_people(key, items)
        purposes = {p.code: p for p in Purpose.objects.filter(brand=brand, code__in={i["purpose"] for i in items})}
        notice_ids = {i["notice"] for i in items if i.get("notice")}
        notices = Notice.objects.filter(brand=brand).in_bulk(notice_ids) if notice_ids else {}
        stores = {
            code: store_for(key, code) if code or key.store else None for code in {i.get("store", "") for i in items}
        }
        errors: dict[str, Any] = {}
        for index, item in enumerate(items):
            if item["purpose"] not in purposes or not purposes[item["purpose"]].is_active:
                errors[str(index)] = {"purpose": [f"The brand has no purpose {item['purpose']!r}."]}
            elif item.get("notice") and item["notice"] not in notices:
                errors[str(index)] = {"notice": ["The brand has no such notice."]}
        if errors:
            raise ValidationError({"events": errors})
        inputs = [
            services.ConsentInput(
                member=member,
                purpose=purposes[item["purpose"]],
                action=item["action"],
                channel=item["channel"],
                occurred_at=item["occurred_at"],
                store=stores[item.get("store", "")],
                notice=notices[item["notice"]] if item.get("notice") else None,
                evidence=item.get("evidence"),
                by_guardian=item["by_guardian"],
                external_id=item["external_id"],
                confirmation=item.get("confirmation"),
            )
            for item, member in zip(items, members, strict=True)
        ]
        try:
            recorded = services.record_consents(
                inputs, brand=brand, source_type=SourceType.API_KEY, source_ref=key.prefix
            )
        except services.BatchConsentError as exc:
            if exc.field == "confirmation":  # the proof of a confirmation: missing, incomplete, misplaced
                detail = {part: [exc.message] for part in exc.parts} or [exc.message]
                raise Unprocessable({"events": {str(exc.index): {exc.field: detail}}}) from None
            raise ValidationError({"events": {str(exc.index): {exc.field: [exc.message]}}}) from None
        results = [
            {
                "external_id": item["external_id"],
                "id": r.event.pk,
                "member": r.event.member_id,
                "created": r.created,
                "action": r.event.action,
                "state_changed": r.state_changed,
            }
            for item, r in zip(items, recorded, strict=True)
        ]
        created = sum(1 for r in results if r["created"])
        body = {"created": created, "existing": len(results) - created, "results": results}
        return Response(
            ConsentEventBatchOutput(body).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# --- Preferences -----------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "string",
        "pattern": QUIET_TIME_PATTERN,
        "example": "22:00",
        "description": "A local time of day (the brand's time zone) as HH:MM or HH:MM:SS, without an offset; "
        "answered as HH:MM:SS.",
    }
)
class QuietTimeField(serializers.Field):
    """One type for quiet hours in the schema, the input and the output
    (``consent.validation.QUIET_TIME_PATTERN``)."""

    default_error_messages = {"invalid": QUIET_TIME_MESSAGE}

    def to_internal_value(self, data: Any) -> dt.time:
        parsed = parse_quiet_time(data)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value: dt.time) -> str:
        return format_quiet_time(value)


class PreferenceSerializer(serializers.Serializer):
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.values), required=False, max_length=10
    )
    max_per_week = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=50)
    quiet_start = QuietTimeField(required=False, allow_null=True)
    quiet_end = QuietTimeField(required=False, allow_null=True)
    topics = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=50)
    promotion_types = serializers.ListField(
        child=serializers.ChoiceField(choices=Preference.PromotionType.values), required=False, max_length=10
    )
    language = serializers.ChoiceField(choices=["", *dict(settings.LANGUAGES)], required=False, allow_blank=True)


class PreferenceOutput(PreferenceSerializer):
    updated_at = serializers.DateTimeField(allow_null=True)


_EMPTY_PREFERENCE = {
    "channels": [], "max_per_week": None, "quiet_start": None, "quiet_end": None, "topics": [],
    "promotion_types": [], "language": "", "updated_at": None,
}  # fmt: skip


class PreferencesView(ApiView):
    required_scopes = {"GET": ApiKeyScope.CONSENT_READ, "PUT": ApiKeyScope.CONSENT_WRITE}

    @extend_schema(
        operation_id="preferences_retrieve",
        summary="A member's preferences for the key's brand",
        responses={200: PreferenceOutput, **problems(404)},
    )
    def get(self, request: Request, member_id: int) -> Response:
        member = member_for_key(self.key, member_id)
        preference = Preference.objects.filter(member=member, brand_id=self.key.brand_id).first()
        return Response(PreferenceOutput(preference).data if preference else _EMPTY_PREFERENCE)

    @extend_schema(
        operation_id="preferences_update",
        summary="Change a member's preferences",
        description="Fields left out stay as they are; every change is kept as history.",
        request=PreferenceSerializer,
        responses={200: PreferenceOutput, **problems(400, 404)},
    )
    def put(self, request: Request, member_id: int) -> Response:
        member = member_for_key(self.key, member_id)
        changes = _validated(PreferenceSerializer, request.data)
        try:
            preference = services.update_preferences(
                member=member, brand=self.key.brand, source_type=SourceType.API_KEY, source_ref=self.key.prefix,
                **changes,
            )  # fmt: skip
        except services.ConsentError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(PreferenceOutput(preference).data)


urlpatterns = [
    path("consent/check", ConsentCheckView.as_view(), name="api-consent-check"),
    path("consent-events/", ConsentEventsView.as_view(), name="api-consent-events"),
    path("members/<int:member_id>/preferences/", PreferencesView.as_view(), name="api-preferences"),
]

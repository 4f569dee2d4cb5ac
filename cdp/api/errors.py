"""RFC 9457 problem details for every API error, and their OpenAPI description.

Every error body is ``application/problem+json``: ``type``, ``title``, ``status``,
``detail`` and, for invalid input, ``errors`` (one entry per field: a JSON-pointer-like
``field`` path and its ``message``). Unexpected exceptions are not caught here: a bug
stays a 500 and reaches the error log.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://cdp.example.com/problems/"

_TITLES = {
    400: ("invalid-request", "The request is not valid."),
    401: ("unauthenticated", "An API key is needed."),
    403: ("forbidden", "This API key may not do that."),
    404: ("not-found", "Not found."),
    405: ("method-not-allowed", "Method not allowed."),
    406: ("not-acceptable", "Not acceptable."),
    409: ("conflict", "Conflict."),
    413: ("request-too-large", "The request body is too large."),
    415: ("unsupported-media-type", "Send JSON (Content-Type: application/json)."),
    422: ("unprocessable", "A rule refuses the request as sent."),
    429: ("rate-limited", "Too many requests for this API key."),
}


def _flatten(data: Any, path: str = "") -> list[dict[str, str]]:
    """DRF's nested validation errors → [{"field": "events/3/phone", "message": "…"}]."""
    out: list[dict[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = "" if key in ("non_field_errors", "detail") else str(key)
            out += _flatten(value, f"{path}/{name}" if path and name else (name or path))
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            out += [{"field": path, "message": str(item)} for item in data]
        else:
            for index, item in enumerate(data):
                if item:
                    out += _flatten(item, f"{path}/{index}" if path else str(index))
    else:
        out.append({"field": path, "message": str(data)})
    return out


class Unprocessable(exceptions.ValidationError):
    """422: input of the right shape that a rule refuses (``confirmed`` without the proof
    of a confirmation); reported like invalid input, one entry per field in ``errors``."""

    status_code = 422
    default_detail = "A rule refuses the request as sent."
    default_code = "unprocessable"


def problem(status_code: int, detail: str, *, errors: list[dict[str, str]] | None = None, **extra: Any) -> Response:
    slug, title = _TITLES.get(status_code, ("error", "Error."))
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5])
        result = problem(response.status_code, detail or "The request is not valid.", errors=errors)
    else:
        result = problem(response.status_code, str(exc.detail))
    request = context.get("request")
    if request is not None:
        result.data["instance"] = request.path
    for header in ("Retry-After", "WWW-Authenticate", "Allow"):
        if header in response:
            result[header] = response[header]
    if isinstance(exc, exceptions.Throttled) and "Retry-After" not in result:
        result["Retry-After"] = str(int(exc.wait or 1))
    return result


# --- OpenAPI -----------------------------------------------------------------------------


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Path of the field, e.g. `events/3/occurred_at` ('' for the whole body).")
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem details object (media type application/problem+json)."""

    type = serializers.URLField(help_text="A URI naming the kind of problem.")
    title = serializers.CharField(help_text="Short summary of the kind of problem.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong with this request, for a human.")
    instance = serializers.CharField(required=False, help_text="The request path.")
    errors = FieldErrorSerializer(many=True, required=False, help_text="Per-field errors of invalid input.")


_DESCRIPTIONS = {
    400: "Invalid input: `errors` names each field and what is wrong with it.",
    401: "No API key, or an unknown, revoked or expired one.",
    403: "The key lacks the scope this endpoint needs, or the object belongs to a store the key is not bound to.",
    404: "Not found, or it belongs to another brand.",
    409: "Conflicts with the current state.",
    413: "The body is larger than API_MAX_REQUEST_BYTES.",
    415: "The body is not JSON.",
    422: "Well-formed, but a rule refuses it: `errors` names each field and what is missing or wrong.",
    429: "The key's rate limit is used up; `Retry-After` says how many seconds to wait.",
}


def problems(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error codes plus the ones every endpoint can give."""
    every = {401, 403, 429}
    return {
        code: OpenApiResponse(ProblemSerializer, description=_DESCRIPTIONS.get(code, "Error."))
        for code in sorted(every | set(codes))
    }


def problem_media_type_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing: error responses are application/problem+json."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if str(code).startswith(("4", "5")) and "content" in response:
                    schema = next(iter(response["content"].values()))
                    response["content"] = {PROBLEM_CONTENT_TYPE: schema}
                    if str(code) == "429":
                        response["headers"] = {
                            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
                        }
    return result


# --- Django-level errors under /api/ ---------------------------------------------------------


def _django_problem(request: Any, status_code: int, detail: str) -> Any:
    from django.http import JsonResponse

    slug, title = _TITLES.get(status_code, ("error", "Error."))
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status_code, "detail": detail,
            "instance": request.path}  # fmt: skip
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def not_found(request: Any, exception: Exception) -> Any:
    """404 for URLs no view matched (``/api/v1/members/abc/``): problem details under
    ``/api/``, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return _django_problem(request, 404, "No such resource.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: Any) -> Any:
    if request.path.startswith("/api/"):
        return _django_problem(request, 500, "Something went wrong on our side; it has been logged.")
    from django.views.defaults import server_error as default

    return default(request)

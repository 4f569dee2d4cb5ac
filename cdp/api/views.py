"""The base of every API view: key authentication, scopes, throttling, size limits, the
key as the audit actor, and the access helpers that keep a key inside its brand."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cdp import audit
from cdp.models import ApiKey

from .exceptions import RequestTooLarge
from .parsers import NUL_MESSAGE, UNSTORABLE


def api_key_actor(key: ApiKey, ip: str | None) -> audit.Actor:
    return audit.Actor(type="api_key", label=f"key {key.prefix} ({key.name})"[:150], ip=ip)


class ApiView(APIView):
    """Subclasses set ``required_scope`` (or ``required_scopes`` per method)."""

    required_scope: str | None = None
    required_scopes: dict[str, str] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_REQUEST_BYTES:
            raise RequestTooLarge(f"The body is larger than {settings.API_MAX_REQUEST_BYTES} bytes.")
        super().initial(request, *args, **kwargs)
        # Query parameters reach lookups and filters: a NUL in one is refused by PostgreSQL
        # in the driver (a 500), so it is refused here, naming the parameter.
        for name, values in request.query_params.lists():
            if UNSTORABLE.search(name) or any(UNSTORABLE.search(value) for value in values):
                raise ValidationError({name.replace("\x00", "\\u0000"): [NUL_MESSAGE]})
        # Services write audit rows and ledger sources naming this key.
        self._acting = audit.acting_as(api_key_actor(self.key, audit.client_ip(request)))
        self._acting.__enter__()

    def finalize_response(self, request: HttpRequest, response: Response, *args: Any, **kwargs: Any) -> Response:
        acting = getattr(self, "_acting", None)
        if acting is not None:
            self._acting = None
            acting.__exit__(None, None, None)
        return super().finalize_response(request, response, *args, **kwargs)

    @property
    def key(self) -> ApiKey:
        return self.request.auth

"""``Authorization: Bearer <key>`` authentication and scope permissions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from cdp.api_keys import key_for
from cdp.models import ApiKey


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """``request.user`` for a request made with an API key (never a Django user)."""

    key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False

    def __str__(self) -> str:
        return f"key {self.key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The key is not valid.") from None
        key = key_for(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("The key is not valid, was revoked or has expired.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "cdp.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made in the admin or with `manage.py create_api_key`: "
            "`Authorization: Bearer cdp_…`.",
        }


class HasScope(BasePermission):
    """The view's ``required_scopes[method]`` (or ``required_scope``) must be on the key."""

    message = "This API key does not have the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        scope = required_scope(view, request.method or "GET")
        if scope and not key.has_scope(scope):
            self.message = f"This API key lacks the scope {scope!r}."
            return False
        return True


def required_scope(view: Any, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None) or {}
    scope = scopes.get(method.upper(), getattr(view, "required_scope", None))
    return str(scope) if scope else None

"""The audit trail: who (user, API key or system) changed what, when and from which IP.

The actor travels in a context variable: the middleware sets it for a web request, a task
or command uses ``acting_as``. Services call ``record`` inside their own transaction so an
audit row exists exactly when the change does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Actor:
    type: str  # AuditLog.ActorType value
    label: str
    user_id: int | None = None
    ip: str | None = None


SYSTEM = Actor(type="system", label="system")
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("cdp_actor", default=SYSTEM)


def current_actor() -> Actor:
    return _current.get()


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def user_actor(user: Any, ip: str | None = None) -> Actor:
    return Actor(type="user", label=user.get_username()[:150], user_id=user.pk, ip=ip)


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is trivially forged unless a trusted proxy
    # rewrites it, and the deployment guide puts such a proxy in front that sets it.
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    """Make the signed-in user and their IP the actor for everything this request does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        ip = client_ip(request)
        if user is not None and user.is_authenticated:
            actor = user_actor(user, ip)
        else:
            actor = Actor(type="system", label="anonymous", ip=ip)
        with acting_as(actor):
            return self.get_response(request)


def _describe(obj: models.Model | None) -> tuple[str, str, str]:
    if obj is None:
        return "", "", ""
    meta = obj._meta
    return f"{meta.app_label}.{meta.model_name}", str(obj.pk), str(obj)[:200]


def record(
    action: str,
    obj: models.Model | None = None,
    *,
    changes: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> Any:
    """Write one audit row for ``action`` on ``obj`` by the current (or given) actor."""
    from cdp.models import AuditLog

    actor = actor or current_actor()
    object_type, object_id, object_repr = _describe(obj)
    return AuditLog.objects.create(
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes=changes or {},
        ip_address=actor.ip,
    )

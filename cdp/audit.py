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


ERASED_TEXT = "[erased]"


def forget_objects(objects: dict[str, list[str]], *, terms: list[str]) -> int:
    """The erasure's part of the audit trail (DESIGN.md ⚑ deletion). The rows stay (who
    did what, when, to which object id: the record a regulator asks for), but their
    object text (``str(obj)``: a member's name) becomes the object's id, and every string
    in their details that contains one of ``terms`` (the person's name, contact points,
    store member ids, in every form they were written) becomes "[erased]". The same for
    Django's own admin log. ``objects`` maps "app_label.model_name" to the ids of the
    person's objects; rows of other objects are looked at only when their details name
    one of those members (``pii.viewed`` of a list). Inside the caller's transaction."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Q

    from cdp.models import AuditLog

    terms = [t for t in {t.strip() for t in terms if t} if len(t) >= 2]
    about = Q(pk__in=[])
    for object_type, ids in objects.items():
        about |= Q(object_type=object_type, object_id__in=[str(i) for i in ids])
    changed = 0
    for row in AuditLog.objects.select_for_update().filter(about):
        row.object_repr = f"#{row.object_id}"
        row.changes = _redacted(row.changes, terms)
        row.save(update_fields=["object_repr", "changes"])
        changed += 1
    for object_type, ids in objects.items():
        app_label, _, model = object_type.partition(".")
        content_type = ContentType.objects.filter(app_label=app_label, model=model).first()
        if content_type is None:
            continue
        for entry in LogEntry.objects.filter(content_type=content_type, object_id__in=[str(i) for i in ids]):
            entry.object_repr = f"#{entry.object_id}"
            entry.change_message = _redacted_text(entry.change_message, terms)
            entry.save(update_fields=["object_repr", "change_message"])
            changed += 1
    return changed


def _redacted(value: Any, terms: list[str]) -> Any:
    if isinstance(value, str):
        return _redacted_text(value, terms)
    if isinstance(value, list):
        return [_redacted(item, terms) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, terms) for key, item in value.items()}
    return value


def _redacted_text(text: str, terms: list[str]) -> str:
    folded = text.casefold()
    return ERASED_TEXT if any(term.casefold() in folded for term in terms) else text

"""⚑ Brand wall, staff side: a staff member sees and changes only the brands they belong
to (``Brand.staff``); superusers and whoever holds ``members.all_brands`` (the
Administrator role) see every brand.

Enforced in one place: ``install(site)`` gives every registered ModelAdmin (and each of
their inlines) a scoped subclass whose querysets, object look-ups, foreign-key choices
and related-object filters are cut to the staff member's brands by ``BRAND_PATHS``, the
lookup from each model to its brand. A model registered in the admin that is in neither
``BRAND_PATHS`` nor ``EVERY_BRAND_ONLY`` stops the site at start-up: nothing is shown
unscoped by omission. Custom admin views look objects up through ``scoped`` (or their
ModelAdmin's ``get_queryset``), never through a model's plain manager.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .db_router import ReplicaChangelistMixin

ALL_BRANDS_PERMISSION = "members.all_brands"

Scope = str | Callable[[QuerySet, frozenset[int]], QuerySet]


def _identity(queryset: QuerySet, ids: frozenset[int]) -> QuerySet:
    # Contact points a store of the brand gave, or that no store gave (the person's own);
    # never another brand's store member ids.
    members = queryset.model._base_manager.filter(member__memberships__store__brand__in=ids).values("member_id")
    return queryset.filter(member_id__in=members).filter(Q(store__isnull=True) | Q(store__brand__in=ids))


# model label → the lookup from the model to its brand's id, or a function that scopes.
BRAND_PATHS: dict[str, Scope] = {
    "members.brand": "pk",
    "members.store": "brand",
    "members.member": "memberships__store__brand",
    "members.storemembership": "store__brand",
    "members.identity": _identity,
    "members.order": "store__brand",
    "members.mergeevent": "survivor__memberships__store__brand",
    "members.nevermerge": "member_a__memberships__store__brand",
    "cdp.apikey": "brand",
    "consent.consentevent": "brand",
    "consent.consentstate": "brand",
    "consent.preference": "brand",
    "consent.preferencechange": "preference__brand",
    "consent.datausage": "brand",
    "consent.suppression": "brand",
    "consent.purpose": "brand",
    "consent.notice": "brand",
    "consent.noticedraft": "brand",
    "imports.importjob": "store__brand",
    "imports.platformconnection": "store__brand",
    "imports.platformevent": "connection__store__brand",
    "privacy.datasubjectrequest": "member__memberships__store__brand",
    "privacy.privacyaccount": "member__memberships__store__brand",
    "segments.segment": "brand",
    "segments.segmentbuild": "segment__brand",
    "segments.segmentexport": "build__segment__brand",
    "segments.contactlog": "brand",
    "segments.contactpolicy": "brand",
    "webhooks.subscription": "brand",
    "webhooks.delivery": "subscription__brand",
    "webhooks.deliveryattempt": "delivery__subscription__brand",
    "webhooks.consentfilefeed": "brand",
    "webhooks.consentfile": "feed__brand",
}

# Not about one brand (users, schedules, the whole ledger's checkpoints, the outbox, the
# audit log): only staff who see every brand see them.
EVERY_BRAND_ONLY = {
    "auth.user",
    "auth.group",
    "account.emailaddress",
    "django_celery_beat",
    "otp_totp.totpdevice",
    "cdp.auditlog",
    "cdp.outboxmessage",
    "consent.checkpoint",
    "consent.ledgerverification",
}
EVERY = "every brand only"


def staff_brand_ids(user: Any) -> frozenset[int] | None:
    """The ids of the brands ``user`` belongs to; None when they see every brand."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser or user.has_perm(ALL_BRANDS_PERMISSION):
        return None
    cached = user.__dict__.get("_staff_brand_ids")
    if cached is None:
        cached = frozenset(user.staff_brands.values_list("pk", flat=True))
        user.__dict__["_staff_brand_ids"] = cached
    return cached


# The staff member an admin page is drawn for (``AdminViewerMiddleware``), for what a model
# cannot be given as an argument: ``Member.__str__``.
_viewer: contextvars.ContextVar[Any] = contextvars.ContextVar("cdp_admin_viewer", default=None)


def viewer() -> Any:
    """The staff member the admin page being drawn is for (None outside admin pages)."""
    return _viewer.get()


def golden_record_hidden() -> bool:
    """Whether the admin page being drawn is for staff of some brands only. A member's
    merged ("golden") values mix what every brand collected, so such staff see a member as
    ``#id`` wherever one is named, and the member pages show what their brands' stores
    gave (``members.brand_view``) instead."""
    user = _viewer.get()
    return user is not None and staff_brand_ids(user) is not None


class AdminViewerMiddleware:
    """Sets the viewer of ``golden_record_hidden`` for admin pages drawn for staff."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if not request.path.startswith("/admin/") or not getattr(user, "is_staff", False):
            return self.get_response(request)
        token = _viewer.set(user)
        try:
            response = self.get_response(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()  # a TemplateResponse names its members while rendering
            return response
        finally:
            _viewer.reset(token)


def scope_of(model: type[models.Model]) -> Scope:
    label = model._meta.label_lower
    if label in BRAND_PATHS:
        return BRAND_PATHS[label]
    if label in EVERY_BRAND_ONLY or model._meta.app_label in EVERY_BRAND_ONLY:
        return EVERY
    raise ImproperlyConfigured(
        f"{model._meta.label} has an admin but no brand scope: add it to cdp.admin_scope.BRAND_PATHS "
        "(the lookup to its brand) or to EVERY_BRAND_ONLY."
    )


def _multi_valued(model: type[models.Model], path: str) -> bool:
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        if field.many_to_many or field.one_to_many:
            return True
        model = field.related_model or model
    return False


def scoped(queryset: QuerySet, user: Any) -> QuerySet:
    """``queryset`` cut to the brands ``user`` may see."""
    ids = staff_brand_ids(user)
    if ids is None:
        return queryset
    scope = scope_of(queryset.model)
    if scope == EVERY or not ids:
        return queryset.none()
    if callable(scope):
        return scope(queryset, ids)
    if scope == "pk":
        return queryset.filter(pk__in=ids)
    if _multi_valued(queryset.model, scope):
        # A semi-join: a member of two of the brand's stores is listed once.
        return queryset.filter(pk__in=queryset.model._base_manager.filter(**{f"{scope}__in": ids}).values("pk"))
    return queryset.filter(**{f"{scope}__in": ids})


def may_see(user: Any, obj: models.Model) -> bool:
    """Whether ``obj`` is within ``user``'s brands (remembered on the user for the request:
    the admin asks several times per page)."""
    if staff_brand_ids(user) is None:
        return True
    seen = user.__dict__.setdefault("_staff_may_see", {})
    key = (obj._meta.label_lower, obj.pk)
    if key not in seen:
        seen[key] = scoped(type(obj)._base_manager.filter(pk=obj.pk), user).exists()
    return seen[key]


def _scope_formfield(formfield: Any, user: Any) -> Any:
    queryset = getattr(formfield, "queryset", None)
    if queryset is not None and _scoped_model(queryset.model):
        formfield.queryset = scoped(queryset, user)
    return formfield


def _scoped_model(model: type[models.Model]) -> bool:
    label = model._meta.label_lower
    return label in BRAND_PATHS or label in EVERY_BRAND_ONLY or model._meta.app_label in EVERY_BRAND_ONLY


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A filter by a related object that offers only the objects the staff member sees."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[Any]:
        related = field.related_model
        if not _scoped_model(related):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return [(obj.pk, str(obj)) for obj in scoped(related._default_manager.order_by(*ordering), request.user)]


class BrandScopedAdminMixin:
    """What ``install`` puts in front of every registered ModelAdmin and inline."""

    model: type[models.Model]

    def _every_brand_only(self, request: HttpRequest) -> bool:
        return scope_of(self.model) == EVERY and staff_brand_ids(request.user) is not None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scoped(super().get_queryset(request), request.user)  # type: ignore[misc]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return not self._every_brand_only(request) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._every_brand_only(request) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return not self._every_brand_only(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._every_brand_only(request) or (obj is not None and obj.pk and not may_see(request.user, obj)):
            return False
        return super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._every_brand_only(request) or (obj is not None and obj.pk and not may_see(request.user, obj)):
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        return _scope_formfield(formfield, request.user) if formfield is not None else None

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        return _scope_formfield(formfield, request.user) if formfield is not None else None

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = []
        for entry in super().get_list_filter(request):  # type: ignore[misc]
            if isinstance(entry, str) and _is_relation(self.model, entry):
                entry = (entry, ScopedRelatedFieldListFilter)
            filters.append(entry)
        return filters

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        instances = super().get_inline_instances(request, obj)  # type: ignore[misc]
        for inline in instances:
            if not isinstance(inline, BrandScopedAdminMixin):
                scope_of(inline.model)
                inline.__class__ = _scoped_class(type(inline))
        return instances


def _is_relation(model: type[models.Model], path: str) -> bool:
    field = None
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        model = field.related_model or model
    return bool(field is not None and field.is_relation and field.many_to_one)


_CLASSES: dict[type, type] = {}


def _scoped_class(cls: type) -> type:
    if cls not in _CLASSES:
        # Lists of registered models read a replica when there is one (cdp.db_router).
        bases = (
            (BrandScopedAdminMixin, cls)
            if issubclass(cls, InlineModelAdmin)
            else (BrandScopedAdminMixin, ReplicaChangelistMixin, cls)
        )
        _CLASSES[cls] = type(f"BrandScoped{cls.__name__}", bases, {"__module__": cls.__module__})
    return _CLASSES[cls]


def install(site: admin.AdminSite) -> None:
    """Give every ModelAdmin of ``site`` its scoped subclass (idempotent); a model with no
    declared scope raises ImproperlyConfigured."""
    for model, model_admin in list(site._registry.items()):
        scope_of(model)
        if not isinstance(model_admin, BrandScopedAdminMixin):
            site._registry[model] = _scoped_class(type(model_admin))(model, site)

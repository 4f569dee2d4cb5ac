"""Connecting a store's platform: ``connect_platform`` makes or replaces the store's
connection (one per store), audited; the secret is shown to whoever connects, never again."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from cdp import audit
from cdp.standard_webhooks import new_secret
from consent.models import Notice, Purpose
from members.models import Store

from .models import DEFAULT_ADAPTER, PlatformConnection

MEMBERSHIP_PURPOSE = "membership"


class ConnectionError_(ValueError):  # noqa: N801 - not the builtin ConnectionError
    """The store cannot be connected as asked; the message says what to do."""


@dataclass(frozen=True)
class Connected:
    connection: PlatformConnection
    created: bool
    secret: str  # as stored: the platform's secret, or the ``whsec_`` one made here
    secret_made: bool  # made here: to be shown once to whoever connects


def agreement_for(store: Store, locale: str = "zh-hans") -> Notice | None:
    """The brand's newest membership agreement in ``locale`` (else in any language)."""
    notices = Notice.objects.filter(brand_id=store.brand_id, kind=Notice.Kind.MEMBER_AGREEMENT).order_by(
        "-published_at", "-version"
    )
    return notices.filter(locale=locale).first() or notices.first()


@transaction.atomic
def connect_platform(
    *,
    store: Store,
    adapter: str = "",
    secret: str = "",
    app_id: str = "",
    purpose: Purpose | None = None,
    notice: Notice | None = None,
    is_active: bool = True,
) -> Connected:
    """Connect ``store``'s platform. The adapter defaults to the store's platform's; the
    generic adapter makes its own ``whsec_`` secret when none is given; the purpose
    defaults to the brand's ``membership`` purpose (made when missing), the notice to the
    brand's newest membership agreement."""
    adapter = adapter or DEFAULT_ADAPTER.get(store.platform, PlatformConnection.Adapter.GENERIC)
    if adapter not in PlatformConnection.Adapter.values:
        raise ConnectionError_(f"unknown adapter {adapter!r}; one of {', '.join(PlatformConnection.Adapter.values)}")
    existing = PlatformConnection.objects.filter(store=store).first()
    if not secret and existing is not None and existing.adapter == adapter:
        secret = existing.secret  # reconnecting keeps the secret the platform has
    made = not secret
    if made:
        if adapter != PlatformConnection.Adapter.GENERIC:
            raise ConnectionError_("give the secret the platform shows for the brand's app (app secret or token)")
        secret = new_secret()
    if purpose is None:
        purpose, _made = Purpose.objects.get_or_create(
            brand_id=store.brand_id, code=MEMBERSHIP_PURPOSE,
            defaults={"name": "会员服务", "description": "Membership of the brand's stores: points, tiers, benefits."},
        )  # fmt: skip
    notice = notice or agreement_for(store)
    if notice is None:
        raise ConnectionError_(f"brand {store.brand.code!r} has published no membership agreement; publish it first")
    connection, created = PlatformConnection.objects.update_or_create(
        store=store,
        defaults={"adapter": adapter, "secret": secret, "app_id": app_id, "agreement_purpose": purpose,
                  "agreement_notice": notice, "is_active": is_active,
                  **({} if existing else {"created_by": audit.current_actor().label})},
    )  # fmt: skip
    connection.full_clean()
    audit.record(
        "platform.connected",
        connection,
        changes={
            "adapter": adapter,
            "app_id": app_id,
            "purpose": purpose.code,
            "notice_version": notice.version,
            "secret_changed": existing is None or existing.secret != secret,
            "active": is_active,
        },
    )
    return Connected(connection, created, secret, made)

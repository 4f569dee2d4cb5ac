"""Onboarding a brand in one step (``manage.py create_brand``, the admin's "Onboard a
brand" page): the brand, its stores, the default purposes and their notices and the
membership agreement in the four languages (``onboarding_texts``, for the privacy officer
to review), and its staff with their roles. One transaction, audited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from cdp import audit
from members.models import Brand, Platform, Store

from .models import Notice, Purpose
from .onboarding_texts import AGREEMENT, LOCALES, PURPOSES, purpose_fields
from .services import publish_notice

ROLES = ("Marketer", "Privacy officer", "Administrator")  # insights.roles' groups


class OnboardingError(ValueError):
    """The brand cannot be created as asked; the message says what to change."""


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    platform: str
    city: str = ""


@dataclass
class Onboarded:
    brand: Brand
    stores: list[Store] = field(default_factory=list)
    purposes: list[Purpose] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    staff: list[tuple[str, str]] = field(default_factory=list)  # username, role


def parse_stores(text: str) -> list[StoreSpec]:
    """``code,name,platform[,city]`` per line (the command's and the page's format)."""
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 3 or not all(parts[:3]):
            raise OnboardingError(f"store line {number}: write code,name,platform[,city]")
        if parts[2] not in Platform.values:
            raise OnboardingError(
                f"store line {number}: {parts[2]!r} is not a platform; one of {', '.join(Platform.values)}"
            )
        specs.append(StoreSpec(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    return specs


@transaction.atomic
def onboard_brand(
    *,
    code: str,
    name: str,
    stores: list[StoreSpec],
    jurisdiction: str = Brand.Jurisdiction.CN,
    privacy_email: str = "",
    legal_name: str = "",
    staff: list[tuple[str, str]] | None = None,
) -> Onboarded:
    """Create the brand with everything it needs before its first import. ``staff``:
    (username, role) of existing staff users, who then work for this brand."""
    if Brand.objects.filter(code=code).exists():
        raise OnboardingError(f"a brand with the code {code!r} exists already")
    taken = sorted(set(Store.objects.filter(code__in=[s.code for s in stores]).values_list("code", flat=True)))
    if taken:
        raise OnboardingError(f"store code(s) taken: {', '.join(taken)}")
    brand = Brand(code=code, name=name, jurisdiction=jurisdiction, privacy_email=privacy_email, legal_name=legal_name)
    _valid(brand)
    brand.save()
    done = Onboarded(brand)
    for spec in stores:
        store = Store(brand=brand, code=spec.code, name=spec.name, platform=spec.platform, city=spec.city)
        _valid(store)
        store.save()
        done.stores.append(store)
    for locale in LOCALES:
        title, body = AGREEMENT[locale]
        done.notices.append(publish_notice(
            brand=brand, kind=Notice.Kind.MEMBER_AGREEMENT, locale=locale, title=title, body=body.format(brand=name)
        ))  # fmt: skip
    for text in PURPOSES:
        purpose = Purpose.objects.create(
            brand=brand, code=text.code, channels=text.channels, is_marketing=text.marketing,
            separate_consent=text.separate, is_sale_or_sharing=text.sale_or_sharing, **purpose_fields(text, name),
        )  # fmt: skip
        done.purposes.append(purpose)
        for locale in LOCALES:
            title, body = text.notices[locale]
            done.notices.append(publish_notice(
                brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale=locale, title=title,
                body=body.format(brand=name),
            ))  # fmt: skip
    for username, role in staff or []:
        done.staff.append(_add_staff(brand, username, role))
    audit.record(
        "brand.onboarded",
        brand,
        changes={"stores": [s.code for s in done.stores], "purposes": [p.code for p in done.purposes],
                 "notices": len(done.notices), "staff": done.staff},
    )  # fmt: skip
    return done


def _valid(obj: Any) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
        raise OnboardingError(problems) from None


def _add_staff(brand: Brand, username: str, role: str) -> tuple[str, str]:
    if role not in ROLES:
        raise OnboardingError(f"{role!r} is not a role; one of {', '.join(ROLES)}")
    user = get_user_model().objects.filter(username=username, is_staff=True, is_active=True).first()
    if user is None:
        raise OnboardingError(f"no active staff user {username!r}: create the user first")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise OnboardingError(f"the role {role!r} does not exist: run manage.py migrate (or seed_roles)")
    user.groups.add(group)
    brand.staff.add(user)
    return username, role

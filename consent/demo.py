"""Demo consent for the demo people (see members.demo): purposes, notice versions, and a
realistic ledger recorded through ``record_consent`` from every kind of source."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp import audit
from members.models import Brand, Member

from . import services
from .models import ConsentEvent, Notice, Purpose
from .onboarding_texts import AGREEMENT, ALL_PURPOSES, LOCALES, purpose_fields

# The demo brands' purposes: the onboarding defaults but membership, plus cross-border.
PURPOSE_CODES = ["marketing", "personalization", "analytics", "third_party_sharing", "cross_border_transfer"]
SOURCES = [("store", 50), ("import_job", 20), ("privacy_center", 15), ("api_key", 15)]
# Version 2 of every notice adds this, and says so in its change summary.
REVISION = {
    "zh-hans": (
        "撤回同意或注销会员后，我们在 30 天内停止为此处理并删除相关数据。您可以随时在隐私中心撤回。",
        "新增保存期限：撤回同意或注销会员后 30 天内删除数据；说明如何在隐私中心撤回。",
    ),
    "zh-hant": (
        "撤回同意或註銷會員後，我們在 30 天內停止為此處理並刪除相關資料。您可以隨時在隱私中心撤回。",
        "新增保存期限：撤回同意或註銷會員後 30 天內刪除資料；說明如何在隱私中心撤回。",
    ),
    "en": (
        "Within 30 days after you withdraw or leave the membership we stop this processing and delete the data "
        "used for it. You can withdraw at any time in the privacy center.",
        "Added how long we keep the data (deleted within 30 days after you withdraw or leave) and how to "
        "withdraw in the privacy center.",
    ),
    "ru": (
        "В течение 30 дней после отзыва согласия или выхода из клуба мы прекращаем эту обработку и удаляем "
        "связанные с ней данные. Отозвать согласие можно в любой момент в центре конфиденциальности.",
        "Добавлены срок хранения (удаление в течение 30 дней после отзыва согласия или выхода из клуба) и "
        "способ отзыва в центре конфиденциальности.",
    ),
}


def _publish_versions(brand: Brand, texts: dict[str, tuple[str, str]], at: tuple[dt.datetime, dt.datetime], **kw):
    """Versions 1 and 2 in every language: the same title, version 2 with the revision
    appended and a change summary of its own."""
    versions: dict[str, list[Notice]] = {}
    for locale in LOCALES:
        title, body = texts[locale]
        body = body.format(brand=brand.name)
        clause, summary = REVISION[locale]
        separator = "" if locale.startswith("zh") else " "
        versions[locale] = [
            services.publish_notice(brand=brand, locale=locale, title=title, body=body, published_at=at[0], **kw),
            services.publish_notice(
                brand=brand, locale=locale, title=title, body=body + separator + clause, published_at=at[1],
                change_summary=summary, **kw,
            ),
        ]  # fmt: skip
    return versions


def _notices(brand: Brand, purposes: dict[str, Purpose], now: dt.datetime) -> dict[str, dict[str, list[Notice]]]:
    """Version 1 two years ago, version 2 half a year ago, for the agreement and each
    purpose, in the four languages."""
    at = (now - dt.timedelta(days=800), now - dt.timedelta(days=180))
    _publish_versions(brand, AGREEMENT, at, kind=Notice.Kind.MEMBER_AGREEMENT)
    return {
        code: _publish_versions(brand, ALL_PURPOSES[code].notices, at, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose)
        for code, purpose in purposes.items()
    }


def seed_consent(*, people: list[Any], seed: int = 42) -> dict[str, Any]:
    rng = random.Random(seed + 1)
    now = timezone.now()
    # Demo people are not real: mail them no consent receipts (connected again below).
    from . import receivers
    from . import signals as consent_signals

    receipts_on = consent_signals.consent_changed.disconnect(dispatch_uid=receivers.RECEIPTS_UID)
    try:
        _seed(people, rng, now)
    finally:
        if receipts_on:
            receivers.connect_receipts()
    by_purpose = Counter(
        f"{code}/{channel or '-'}:{action}"
        for code, channel, action in ConsentEvent.objects.values_list("purpose__code", "channel", "action")
    )
    return {"events": ConsentEvent.objects.count(), "by_purpose": dict(sorted(by_purpose.items()))}


def _seed(people: list[Any], rng: random.Random, now: dt.datetime) -> None:
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        catalogue: dict[int, tuple[dict[str, Purpose], dict[str, dict[str, list[Notice]]]]] = {}
        for brand in Brand.objects.all():
            purposes = {
                code: Purpose.objects.create(
                    brand=brand,
                    code=code,
                    channels=ALL_PURPOSES[code].channels,
                    is_marketing=ALL_PURPOSES[code].marketing,
                    separate_consent=ALL_PURPOSES[code].separate,
                    is_sale_or_sharing=ALL_PURPOSES[code].sale_or_sharing,
                    **purpose_fields(ALL_PURPOSES[code], brand.name),
                )  # fmt: skip
                for code in PURPOSE_CODES
            }
            catalogue[brand.pk] = (purposes, _notices(brand, purposes, now))
        # One query for everyone rather than one per person.
        members = Member.objects.in_bulk([person.member_id for person in people])
        for person in people:
            store, _, values = person.records[0]
            member = members[person.member_id]
            _person_consent(person, member, store, values["joined_at"], catalogue[store.brand_id], rng, now)


def _person_consent(
    person, member, store, joined: dt.datetime, catalogue, rng: random.Random, now: dt.datetime
) -> None:
    purposes, notices = catalogue
    brand = store.brand
    minor = (now.date() - person.birth_date).days < 14 * 365
    # Every language is published, so the person's own (or the brand's first) is there.
    locale = next(code for code in brand.language_order(person.locale or None) if code in notices[PURPOSE_CODES[0]])

    def notice_for(code: str, when: dt.datetime) -> Notice:
        v1, v2 = notices[code][locale]
        return v2 if when >= v2.published_at else v1

    def record(
        code: str,
        action: str,
        when: dt.datetime,
        channel: str = "",
        source: str | None = None,
        *,
        confirmation: dict[str, Any] | None = None,
        request: ConsentEvent | None = None,
    ) -> ConsentEvent | None:
        if when > now:  # a withdrawal "later" than today has not happened yet
            return None
        source = source or rng.choices([s for s, _ in SOURCES], weights=[w for _, w in SOURCES])[0]
        evidence: dict[str, Any] = {"checkbox": notice_for(code, when).title}
        if source == "import_job":
            evidence.update({"file_sha256": f"{rng.getrandbits(256):064x}", "row": rng.randint(2, 50000)})
        elif source in ("privacy_center", "double_opt_in", "unsubscribe_link"):
            evidence.update(
                {"ip": f"203.0.113.{rng.randint(1, 254)}", "user_agent": "Mozilla/5.0 (iPhone) MicroMessenger"}
            )
        if request is not None:  # the click on the link in the request's mail
            evidence = {**evidence, "request_event_id": request.pk}
        return services.record_consent(
            member=member, brand=brand, purpose=purposes[code], channel=channel, action=action,
            occurred_at=when, source_type=source,
            source_ref=store.code if source == "store" else f"demo-{source}",
            store=store if source == "store" else None, notice=notice_for(code, when), evidence=evidence,
            by_guardian=minor and rng.random() < 0.5, confirmation=confirmation,
            opt_in_mail=False,  # demo people are not real: no confirmation mails either
        ).event  # fmt: skip

    at_join = joined + dt.timedelta(minutes=rng.randint(0, 30))
    if rng.random() < 0.60:
        record("marketing", "granted", at_join, "sms")
        if rng.random() < 0.12:
            later = at_join + dt.timedelta(days=rng.randint(5, 300))
            record(
                "marketing",
                "withdrawn",
                later,
                "sms",
                rng.choice(["privacy_center", "unsubscribe_link", "sms_keyword"]),
            )
    if person.email and rng.random() < 0.85:  # about 35% of all people
        # The privacy center asks for the confirmation itself; the other sources pass on a
        # grant, which becomes a request we mail a link for, or, for one in six, comes with
        # the proof of a double opt-in the store ran itself and is confirmed at once.
        source = rng.choices([s for s, _ in SOURCES], weights=[w for _, w in SOURCES])[0]
        proof = None
        if source != "privacy_center" and rng.random() < 1 / 6:
            proof = {
                "confirmed_at": min(at_join + dt.timedelta(minutes=rng.randint(5, 600)), now),
                "ip": f"198.51.100.{rng.randint(1, 254)}",
                "message_id": f"<optin-{rng.getrandbits(48):012x}@{store.code}.example>",
            }
        action = "requested" if source == "privacy_center" else "granted"
        request = record("marketing", action, at_join, "email", source, confirmation=proof)
        # Four in five people open the mail and click within two days; the others have
        # not (yet): their e-mail stays "pending confirmation".
        if request is not None and request.action == "requested" and rng.random() < 0.8:
            clicked = at_join + dt.timedelta(hours=rng.randint(1, 48))
            record("marketing", "confirmed", clicked, "email", "double_opt_in", request=request)
    if person.unionid and rng.random() < 0.6:
        record("marketing", "granted", at_join, "wechat")
    if rng.random() < 0.70:
        record("personalization", "granted", at_join)
        if rng.random() < 0.05:
            record(
                "personalization",
                "withdrawn",
                at_join + dt.timedelta(days=rng.randint(10, 400)),
                source="privacy_center",
            )
    if rng.random() < 0.40:
        record("analytics", "granted", at_join)
    if rng.random() < 0.05:
        record("third_party_sharing", "granted", at_join + dt.timedelta(days=1), source="privacy_center")


def privacy_center_hint() -> str:
    """A demo shopper to sign in to the privacy center as: one with an e-mail address and
    several store memberships. The code arrives in the console (console mail backend)."""
    from django.conf import settings
    from django.db.models import Count

    from members.models import Identity

    identity = (
        Identity.objects.filter(kind="email", member__status=Member.Status.ACTIVE)
        .annotate(stores=Count("member__memberships"))
        .order_by("-stores", "member_id")
        .select_related("member", "store__brand")
        .first()
    )
    if identity is None:
        return ""
    brand = identity.store.brand if identity.store_id else None
    entry = f"{settings.SITE_URL}/privacy/b/{brand.code}/" if brand else f"{settings.SITE_URL}/privacy/"
    return (
        f"  privacy center: {entry} (as a shopper of that brand sees it) — sign in as {identity.value} "
        f"({identity.member.name or 'a demo shopper'}); the one-time code is printed in this console"
    )

"""Demo segments for the demo brands (see members.demo and consent.demo), with a realistic
history: a first build, last week's SMS send from it, some people asking for fewer messages
and a few bounced numbers, then a fresh build, so every step of the funnel removes someone."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.utils import timezone

from cdp import audit
from consent import services as consent_services
from consent.models import Channel, Purpose, SourceType, Suppression
from members.demo import BRANDS
from members.models import Brand, Member

from . import exports, services
from .models import Segment, SegmentExport, SegmentMember

# DESIGN.md "Segment rules": the example rule, verbatim.
EXAMPLE_RULES: dict[str, Any] = {
    "all": [
        {"field": "city", "op": "in", "value": ["上海", "杭州"]},
        {"field": "age", "op": "between", "value": [25, 40]},
        {"field": "orders", "op": ">=", "value": 2, "within_days": 180},
        {"field": "total_spent", "op": ">", "value": 500},
        {
            "any": [
                {"field": "lifecycle_stage", "op": "in", "value": ["active", "at_risk"]},
                {"field": "tier", "op": "=", "value": "gold"},
            ]
        },
    ]
}


SEED_ACTOR = audit.Actor(type="system", label="seed_demo")


def _segments(brand: Brand, categories: list[str], first: bool) -> list[dict[str, Any]]:
    month = timezone.localdate().month
    return [
        {
            # docs/segments.md's example command builds this one by slug alone: one brand has it.
            "slug": "sms-at-risk-shanghai" if first else "sms-repeat-buyers-shanghai",
            "name": "沪杭 25-40 岁复购会员 · 短信券",
            "purpose": "marketing",
            "channel": Channel.SMS,
            "rules": EXAMPLE_RULES,
            "schedule": Segment.Schedule.DAILY,
            "description": "Women and men in Shanghai and Hangzhou, 25-40, two orders in six months, "
            "spent over ¥500, active or at risk of churning (or gold members).",
        },
        {
            "slug": "email-category-fans",
            "name": f"{categories[0]}老客 · 新品邮件",
            "purpose": "marketing",
            "channel": Channel.EMAIL,
            "rules": {
                "all": [
                    {"field": "category", "op": "in", "value": categories[:1], "within_days": 365},
                    {"not": {"field": "lifecycle_stage", "op": "=", "value": "lapsed"}},
                ]
            },
        },
        {
            "slug": "wechat-birthday-month",
            "name": "本月生日会员 · 微信关怀",
            "purpose": "marketing",
            "channel": Channel.WECHAT,
            "rules": {"all": [{"field": "birth_month", "op": "=", "value": month}, {"field": "age", "op": ">=", "value": 18}]},
            "schedule": Segment.Schedule.DAILY,
        },
        {
            "slug": "loyal-personalization",
            "name": "忠诚会员 · 个性化推荐",
            "purpose": "personalization",
            "channel": "",
            "rules": {"any": [{"field": "lifecycle_stage", "op": "=", "value": "loyal"}, {"field": "orders", "op": ">=", "value": 5}]},
        },
    ]  # fmt: skip


def seed_segments(*, seed: int = 42) -> dict[str, Any]:
    rng = random.Random(seed)
    summary: dict[str, Any] = {}
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")):
        for index, brand in enumerate(Brand.objects.order_by("pk")):
            spec = next((b for b in BRANDS if b["code"] == brand.code), None)
            categories = spec["categories"] if spec else ["护肤"]
            for item in _segments(brand, categories, first=index == 0):
                purpose = Purpose.objects.filter(brand=brand, code=item.pop("purpose")).first()
                if purpose is None:
                    continue
                segment = services.save_segment(Segment(brand=brand, purpose=purpose, **item), actor=SEED_ACTOR)
                if segment.rules == EXAMPLE_RULES:
                    _history(segment, rng)
                build, _ = services.request_build(segment, actor=SEED_ACTOR, enqueue=False)
                build = services.run_build(build.pk)
                summary[f"{brand.code}/{segment.slug}"] = build.funnel()
    return summary


def _history(segment: Segment, rng: random.Random) -> None:
    """Last week's send to the segment, then what happened since."""
    build, _ = services.request_build(segment, actor=SEED_ACTOR, enqueue=False)
    build = services.run_build(build.pk)
    if not build.final:
        return
    exports.export_build(build, kind=SegmentExport.Kind.SEND, campaign="双11 预热短信券", actor=SEED_ACTOR)
    sent = list(
        Member.objects.filter(pk__in=SegmentMember.objects.filter(build_id=build.pk).values("member_id")).order_by("pk")
    )
    rng.shuffle(sent)
    # About a quarter asked for at most one message a week (they got it: now at the cap) …
    quarter = max(1, len(sent) // 4)
    for member in sent[:quarter]:
        consent_services.update_preferences(
            member=member, brand=segment.brand, source_type=SourceType.PRIVACY_CENTER, max_per_week=1
        )
    # … and a few numbers bounced (operator reports them as invalid).
    for member in sent[quarter : quarter + max(1, len(sent) // 20)]:
        consent_services.add_suppression(
            channel=Channel.SMS, value=member.phone, reason=Suppression.Reason.BOUNCE, brand=segment.brand,
            note=f"Hard bounce {timezone.localdate() - dt.timedelta(days=3)}",
        )  # fmt: skip

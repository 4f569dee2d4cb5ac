"""The demo brands and their stores, as each platform names them."""

from __future__ import annotations

import io
from typing import Any

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from ..models import Brand, Store

# (code, name, platform, city, weight as a person's first store)
BRANDS: list[dict[str, Any]] = [
    {
        "code": "lotus", "name": "莲花美妆", "legal_name": "莲花美妆（上海）有限公司", "color": "#c2185b",
        "privacy_email": "privacy@lotus.example.com", "address": "上海市静安区南京西路 1000 号",
        "display_name": {"zh_hans": "莲花美妆", "zh_hant": "蓮花美妝", "en": "Lotus Beauty", "ru": "Lotus Beauty (Лотос)"},
        "support_phone": "400-820-8820", "support_email": "care@lotus.example.com", "sms_signature": "莲花美妆",
        "categories": ["护肤", "彩妆", "香水", "身体护理"], "median_amount": 260,
        "stores": [
            ("lotus-tmall", "莲花美妆天猫旗舰店", "tmall", "", 30),
            ("lotus-jd", "莲花美妆京东自营店", "jd", "", 14),
            ("lotus-douyin", "莲花美妆抖音小店", "douyin", "", 16),
            ("lotus-wechat", "莲花美妆微信小程序", "wechat", "", 16),
            ("lotus-xhs", "莲花美妆小红书店", "xiaohongshu", "", 9),
            ("lotus-pos-sh", "莲花美妆上海久光专柜", "pos", "上海", 8),
            ("lotus-pos-hz", "莲花美妆杭州湖滨专柜", "pos", "杭州", 7),
        ],
    },
    {
        "code": "northwind", "name": "北风户外", "legal_name": "北风户外用品（北京）有限公司", "color": "#1565c0",
        "privacy_email": "privacy@northwind.example.com", "address": "北京市朝阳区建国路 88 号",
        "display_name": {"zh_hans": "北风户外", "zh_hant": "北風戶外", "en": "Northwind Outdoor", "ru": "Northwind Outdoor (Северный ветер)"},
        "support_phone": "400-610-6100", "support_email": "service@northwind.example.com", "sms_signature": "北风户外",
        "categories": ["户外服装", "鞋靴", "露营装备", "背包"], "median_amount": 480,
        "stores": [
            ("nw-tmall", "北风户外天猫旗舰店", "tmall", "", 40),
            ("nw-jd", "北风户外京东旗舰店", "jd", "", 25),
            ("nw-website", "北风户外官网", "website", "", 20),
            ("nw-pos-bj", "北风户外北京三里屯店", "pos", "北京", 15),
        ],
    },
]  # fmt: skip
# How each platform writes its member numbers, so ids look like the exports they mimic.
ID_PREFIX = {"tmall": "TM", "jd": "JD", "douyin": "DY", "wechat": "WX", "xiaohongshu": "XHS", "pos": "POS",
             "website": "WEB", "app": "APP", "pinduoduo": "PDD"}  # fmt: skip
# Platforms that do not hand birthdays or real names to brands: their records leave
# blanks, which resolution fills from other stores (survivorship).
THIN_PLATFORMS = {"douyin", "xiaohongshu"}


def demo_logo(color: str) -> bytes:
    """A plain mark in the brand's colour (a ring with a dot), 96×96 PNG: the demo has no designer."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, 92, 92), outline=color, width=12)
    draw.ellipse((34, 34, 62, 62), fill=color)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def create_brands() -> dict[str, list[tuple[Store, int]]]:
    stores: dict[str, list[tuple[Store, int]]] = {}
    for spec in BRANDS:
        brand = Brand(
            code=spec["code"], name=spec["name"], legal_name=spec["legal_name"], color=spec["color"],
            privacy_email=spec["privacy_email"], address=spec["address"], support_phone=spec["support_phone"],
            support_email=spec["support_email"], sms_signature=spec["sms_signature"],
            **{f"display_name_{lang}": name for lang, name in spec["display_name"].items()},
        )  # fmt: skip
        brand.logo.save(f"{spec['code']}.png", ContentFile(demo_logo(spec["color"])), save=False)
        brand.save()
        stores[spec["code"]] = [
            (Store.objects.create(brand=brand, code=code, name=name, platform=platform, city=city), weight)
            for code, name, platform, city, weight in spec["stores"]
        ]
    return stores

"""Demo data: two brands, their stores, people who shop in several of them, orders.

Every store record goes through ``resolve_store_record`` like real data, so the demo shows
real unification (and a few real merges). Deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from cdp import audit

from . import services
from .identities import StoreRecord
from .models import Brand, Identity, LifecycleStage, Member, MergeEvent, Order, Store, StoreMembership

BRANDS = [
    {
        "code": "lotus",
        "name": "莲花美妆",
        "legal_name": "莲花美妆（上海）有限公司",
        "color": "#c2185b",
        "privacy_email": "privacy@lotus.example.com",
        "address": "上海市静安区南京西路 1000 号",
        "categories": ["护肤", "彩妆", "香水", "身体护理"],
        "stores": [
            ("lotus-tmall", "莲花美妆天猫旗舰店", "tmall", ""),
            ("lotus-jd", "莲花美妆京东自营店", "jd", ""),
            ("lotus-douyin", "莲花美妆抖音小店", "douyin", ""),
            ("lotus-wechat", "莲花美妆微信小程序", "wechat", ""),
            ("lotus-xhs", "莲花美妆小红书店", "xiaohongshu", ""),
            ("lotus-pos-sh", "莲花美妆上海久光专柜", "pos", "上海"),
            ("lotus-pos-hz", "莲花美妆杭州湖滨专柜", "pos", "杭州"),
        ],
    },
    {
        "code": "northwind",
        "name": "北风户外",
        "legal_name": "北风户外用品（北京）有限公司",
        "color": "#1565c0",
        "privacy_email": "privacy@northwind.example.com",
        "address": "北京市朝阳区建国路 88 号",
        "categories": ["户外服装", "鞋靴", "露营装备", "背包"],
        "stores": [
            ("nw-tmall", "北风户外天猫旗舰店", "tmall", ""),
            ("nw-jd", "北风户外京东旗舰店", "jd", ""),
            ("nw-website", "北风户外官网", "website", ""),
            ("nw-pos-bj", "北风户外北京三里屯店", "pos", "北京"),
        ],
    },
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鑫浩宇轩然子涵欣怡梓晨一诺思雨佳琪嘉怡俊杰"
)
TRADITIONAL = ["陳志明", "黃美玲", "張家豪", "林淑芬", "劉德華", "吳佩珊", "鄭雅婷", "許文傑", "謝宜君", "蔡明哲"]
RUSSIAN = [("Иван", "Петров"), ("Анна", "Смирнова"), ("Дмитрий", "Иванов"), ("Мария", "Кузнецова"),
           ("Сергей", "Попов"), ("Елена", "Соколова"), ("Алексей", "Волков"), ("Ольга", "Морозова")]  # fmt: skip
PLACES = [("上海", "上海"), ("浙江", "杭州"), ("北京", "北京"), ("广东", "广州"), ("广东", "深圳"),
          ("四川", "成都"), ("江苏", "南京"), ("湖北", "武汉"), ("浙江", "宁波"), ("江苏", "苏州")]  # fmt: skip
TIERS = ["普通会员", "银卡", "金卡", "钻石卡"]
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158",
                   "159", "176", "177", "180", "181", "186", "187", "188", "189", "191", "198", "199"]  # fmt: skip
# Share of people per target lifecycle stage (order histories are shaped to land there).
STAGES = [
    (LifecycleStage.PROSPECT, 15),
    (LifecycleStage.NEW, 8),
    (LifecycleStage.ACTIVE, 20),
    (LifecycleStage.LOYAL, 15),
    (LifecycleStage.AT_RISK, 17),
    (LifecycleStage.LAPSED, 25),
]


@dataclass
class Person:
    name: str
    gender: str
    birth_date: dt.date
    province: str
    city: str
    locale: str
    phone: str
    email: str = ""
    unionid: str = ""
    stage: str = LifecycleStage.PROSPECT
    # (store, store member id, record values) in arrival order
    records: list[tuple[Store, str, dict[str, Any]]] = field(default_factory=list)
    member_id: int | None = None


def _phone_variants(phone: str, rng: random.Random) -> str:
    """The same number as stores type it: 138 0013 8000, +86-138-0013-8000, 8613800138000…"""
    if not phone.startswith("+86"):
        return rng.choice([phone, f"{phone[:2]} {phone[2:5]} {phone[5:8]}-{phone[8:10]}-{phone[10:]}"])
    national = phone[3:]
    return rng.choice(
        [
            national,
            f"{national[:3]} {national[3:7]} {national[7:]}",
            f"+86-{national[:3]}-{national[3:7]}-{national[7:]}",
            f"86{national}",
        ]
    )


def _person(i: int, rng: random.Random, now: dt.datetime) -> Person:
    roll = rng.random()
    province, city = rng.choice(PLACES)
    gender = rng.choice("MF")
    if roll < 0.85:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        locale = "zh-hans"
    elif roll < 0.93:
        name = rng.choice(TRADITIONAL)
        locale = "zh-hant"
    else:
        first, last = rng.choice(RUSSIAN)
        name = f"{first} {last}"
        locale = "ru"
    # About 2% are children (PIPL: under 14 needs a guardian for marketing).
    if rng.random() < 0.02:
        birth = now.date() - dt.timedelta(days=rng.randint(8 * 365, 13 * 365))
    else:
        birth = dt.date(rng.randint(1960, 2006), rng.randint(1, 12), rng.randint(1, 28))
    if locale == "ru" and rng.random() < 0.5:
        phone = f"+79{rng.randint(10, 99)}{i:07d}"
    else:
        phone = f"+86{rng.choice(MOBILE_PREFIXES)}{i:08d}"
    email = (
        f"user{i}@{rng.choice(['qq.com', '163.com', 'gmail.com', 'outlook.com', 'yandex.ru'])}"
        if rng.random() < 0.4
        else ""
    )
    stage = rng.choices([s for s, _ in STAGES], weights=[w for _, w in STAGES])[0]
    return Person(name, gender, birth, province, city, locale, phone, email, stage=stage)


def _order_days(stage: str, rng: random.Random) -> list[int]:
    """Days ago of each order, so the nightly refresh puts the person in ``stage``."""
    if stage == LifecycleStage.PROSPECT:
        return []
    if stage == LifecycleStage.NEW:
        return sorted(rng.sample(range(1, 29), rng.randint(1, 2)))
    if stage == LifecycleStage.LOYAL:
        return [rng.randint(1, 80), *rng.sample(range(85, 360), rng.randint(2, 6))]
    if stage == LifecycleStage.ACTIVE:
        return [rng.randint(31, 88), *rng.sample(range(400, 720), rng.randint(0, 2))]
    if stage == LifecycleStage.AT_RISK:
        return [rng.randint(92, 178), *rng.sample(range(200, 720), rng.randint(0, 2))]
    return [rng.randint(185, 720) for _ in range(rng.randint(1, 3))]


def _brands() -> dict[str, list[Store]]:
    stores: dict[str, list[Store]] = {}
    for spec in BRANDS:
        brand = Brand.objects.create(
            code=spec["code"], name=spec["name"], legal_name=spec["legal_name"], color=spec["color"],
            privacy_email=spec["privacy_email"], address=spec["address"],
        )  # fmt: skip
        stores[spec["code"]] = [
            Store.objects.create(brand=brand, code=code, name=name, platform=platform, city=city)
            for code, name, platform, city in spec["stores"]
        ]
    return stores


def _plan_records(person: Person, i: int, stores: dict[str, list[Store]], rng: random.Random, now: dt.datetime):
    home = "lotus" if rng.random() < 0.72 else "northwind"
    first = rng.choice(stores[home])
    joined = now - dt.timedelta(days=rng.randint(30, 1100))
    base = {
        "name": person.name, "gender": person.gender, "birth_date": person.birth_date, "province": person.province,
        "city": person.city, "locale": person.locale, "tier": rng.choice(TIERS), "points": rng.randint(0, 5000),
    }  # fmt: skip
    if first.platform == "wechat" and rng.random() < 0.5:
        person.unionid = f"o{rng.getrandbits(128):032x}"[:28]
    first_values = {**base, "phone": _phone_variants(person.phone, rng), "email": person.email,
                    "wechat_unionid": person.unionid, "joined_at": joined}  # fmt: skip
    person.records.append((first, f"{first.code[:2].upper()}{i:07d}", first_values))
    if rng.random() >= 0.30:
        return
    # About 30% are members of two or more stores, linked by a shared contact point.
    others = [s for s in stores[home] if s.pk != first.pk]
    if rng.random() < 0.1:
        others = [s for code, group in stores.items() if code != home for s in group]
    extra = rng.sample(others, k=min(len(others), rng.choice((1, 1, 1, 2))))
    split = rng.random() < 0.08 and person.email
    for n, store in enumerate(extra):
        later = min(joined + dt.timedelta(days=rng.randint(1, 300)), now - dt.timedelta(days=1))
        values = {**base, "joined_at": later, "tier": rng.choice(TIERS)}
        link = rng.random()
        if split and n == 0:
            # Arrives as a separate person (e-mail only); the next record links both.
            values["email"] = person.email
            person.records[0][2]["email"] = ""
        elif link < 0.7 or not (person.email or person.unionid):
            values["phone"] = _phone_variants(person.phone, rng)
        elif person.email and link < 0.9:
            values["email"] = person.email.upper() if rng.random() < 0.3 else person.email
        else:
            values["wechat_unionid"] = person.unionid or ""
            values["email"] = person.email if not person.unionid else ""
        person.records.append((store, f"{store.code[:2].upper()}{i:07d}{n}", values))
    if split:
        store = rng.choice(stores[home])
        bridge = {**base, "phone": person.phone, "email": person.email, "joined_at": now - dt.timedelta(days=10)}
        person.records.append((store, f"{store.code[:2].upper()}B{i:06d}", bridge))


def _orders(people: list[Person], stores: dict[str, list[Store]], rng: random.Random, now: dt.datetime) -> int:
    orders: list[Order] = []
    counters: Counter[int] = Counter()
    categories = {spec["code"]: spec["categories"] for spec in BRANDS}

    def add(store: Store, member_id: int | None, days: int) -> None:
        counters[store.pk] += 1
        orders.append(
            Order(
                store=store,
                external_id=f"{store.code.upper()}-{counters[store.pk]:08d}",
                member_id=member_id,
                amount=Decimal(rng.randint(3000, 300000)) / 100,
                placed_at=now - dt.timedelta(days=days, minutes=rng.randint(0, 1439)),
                categories=rng.sample(categories[store.brand.code], k=rng.randint(1, 2)),
            )
        )

    for person in people:
        member_stores = [store for store, _, _ in person.records]
        for days in _order_days(person.stage, rng):
            add(rng.choice(member_stores), person.member_id, days)
    all_stores = [s for group in stores.values() for s in group]
    for _ in range(len(orders) // 3):  # guests ("游客"): about a quarter of all orders
        add(rng.choice(all_stores), None, rng.randint(0, 720))
    Order.objects.bulk_create(orders, batch_size=2000)
    return len(orders)


def seed_demo(*, members: int, seed: int = 42) -> dict[str, Any]:
    """Create the demo brands, stores, people and orders. Returns a summary."""
    rng = random.Random(seed)
    now = timezone.now()
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        stores = _brands()
        people = [_person(i, rng, now) for i in range(members)]
        for i, person in enumerate(people):
            _plan_records(person, i, stores, rng, now)
        for person in people:
            for store, store_member_id, values in person.records:
                record = StoreRecord.clean(
                    store=store, store_member_id=store_member_id, observed_at=values["joined_at"], **values
                )
                person.member_id = services.resolve_store_record(record).member.pk
        order_count = _orders(people, stores, rng, now)
        services.refresh_member_metrics(now=now)
    return {
        "brands": Brand.objects.count(),
        "stores": Store.objects.count(),
        "records": sum(len(p.records) for p in people),
        "members": Member.objects.active().count(),
        "merges": MergeEvent.objects.count(),
        "identities": dict(Counter(Identity.objects.values_list("kind", flat=True))),
        "memberships": StoreMembership.objects.count(),
        "orders": order_count,
        "guest_orders": Order.objects.filter(member__isnull=True).count(),
        "lifecycle": dict(Counter(Member.objects.active().values_list("lifecycle_stage", flat=True))),
        "people": people,
    }

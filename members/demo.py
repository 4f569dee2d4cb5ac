"""Demo data: two brands, their stores, people who shop in several of them, orders.

Every store record goes through ``resolve_store_record`` like real data, so the demo shows
real unification (and a few real merges). Only orders are bulk-inserted: they carry no
identity, so there is nothing for the resolution service to decide. Deterministic for a
given seed (dates are relative to the moment it runs).

``seed_demo`` returns a summary plus ``people`` (the plan it followed), which
``consent.demo`` uses to give the same people consent histories.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from cdp import audit

from . import services
from .identities import StoreRecord
from .models import Brand, Identity, LifecycleStage, Member, MergeEvent, Order, Store, StoreMembership

# (code, name, platform, city, weight as a person's first store)
BRANDS: list[dict[str, Any]] = [
    {
        "code": "lotus", "name": "莲花美妆", "legal_name": "莲花美妆（上海）有限公司", "color": "#c2185b",
        "privacy_email": "privacy@lotus.example.com", "address": "上海市静安区南京西路 1000 号",
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

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = {
    "M": "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙峰志文博睿轩然晨阳诚",
    "F": "芳娜敏静丽艳娟霞秀玲萍红燕琳雪婷慧莹倩颖洁梅琴蓉欣怡佳雨涵萱悦诺琪薇彤瑶",
}
TRADITIONAL = [("陳志明", "M"), ("黃美玲", "F"), ("張家豪", "M"), ("林淑芬", "F"), ("劉建宏", "M"), ("吳佩珊", "F"),
               ("鄭雅婷", "F"), ("許文傑", "M"), ("謝宜君", "F"), ("蔡明哲", "M"), ("楊麗華", "F"), ("王俊賢", "M")]  # fmt: skip
# (Cyrillic, Latin) pairs; a woman's surname takes the feminine ending.
RU_FIRST = {
    "M": [("Иван", "ivan"), ("Дмитрий", "dmitry"), ("Сергей", "sergey"), ("Алексей", "alexey"), ("Андрей", "andrey")],
    "F": [("Анна", "anna"), ("Мария", "maria"), ("Елена", "elena"), ("Ольга", "olga"), ("Наталья", "natalia")],
}
RU_LAST = [("Петров", "petrov"), ("Смирнов", "smirnov"), ("Иванов", "ivanov"), ("Кузнецов", "kuznetsov"),
           ("Попов", "popov"), ("Соколов", "sokolov"), ("Волков", "volkov"), ("Морозов", "morozov")]  # fmt: skip
# (province, city, weight): the big first-tier cities dominate e-commerce membership.
PLACES = [("上海", "上海", 16), ("浙江", "杭州", 11), ("北京", "北京", 14), ("广东", "广州", 10), ("广东", "深圳", 10),
          ("四川", "成都", 8), ("江苏", "南京", 7), ("湖北", "武汉", 7), ("浙江", "宁波", 4), ("江苏", "苏州", 6),
          ("重庆", "重庆", 4), ("陕西", "西安", 3)]  # fmt: skip
TIERS = [("普通会员", 55), ("银卡", 25), ("金卡", 15), ("钻石卡", 5)]
CN_PREFIXES = [str(p) for p in [*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159,
                                *range(180, 190), 191, 193, 195, 196, 197, 198, 199]]  # fmt: skip
RU_PREFIXES = ["903", "905", "906", "909", "915", "916", "917", "925", "926", "929", "962", "965", "977", "985"]
PINYIN = ["zhang", "wang", "li", "liu", "chen", "yang", "xiao", "mei", "jia", "hui", "ming", "tian", "yu", "xin"]
UNIONID_ALPHABET = string.ascii_letters + string.digits + "-_"
# Share of people per target lifecycle stage (order histories are shaped to land there).
STAGES = [(LifecycleStage.PROSPECT, 15), (LifecycleStage.NEW, 8), (LifecycleStage.ACTIVE, 20),
          (LifecycleStage.LOYAL, 15), (LifecycleStage.AT_RISK, 17), (LifecycleStage.LAPSED, 25)]  # fmt: skip
MULTI_STORE_SHARE = 0.30
CROSS_BRAND_SHARE = 0.10  # of the multi-store people
SPLIT_EVERY = 25  # every n-th multi-store person arrives as two members first
MAX_JOIN_DAYS = 1095

Plan = tuple[Store, str, dict[str, Any]]  # (store, store member id, raw record values)


@dataclass
class Person:
    name: str
    gender: str
    birth_date: dt.date
    province: str
    city: str
    locale: str
    phone: str  # E.164; the records write it in the stores' own formats
    email: str = ""
    unionid: str = ""
    stage: str = LifecycleStage.PROSPECT
    order_days: list[int] = field(default_factory=list)
    records: list[Plan] = field(default_factory=list)  # in arrival order
    # Records that arrive after the orders (a later import): they link two members.
    late_records: list[Plan] = field(default_factory=list)
    record_members: list[int] = field(default_factory=list)  # member id per record, as resolved
    member_id: int | None = None  # the member holding the person at the end


class _Unique:
    """Draws values until one is new: phones and e-mails must not link strangers."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def draw(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self.seen:
            value = make()
        self.seen.add(value)
        return value


def _weighted(rng: random.Random, pairs: list[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def _phone_variant(phone: str, rng: random.Random) -> str:
    """The same number as stores type it: 138 0013 8000, +86-138-0013-8000, 8613800138000…"""
    if phone.startswith("+7"):
        n = phone[2:]
        return rng.choice([phone, f"+7 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}", f"+7 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"])
    n = phone[3:]
    return rng.choice(
        [n, f"{n[:3]} {n[3:7]} {n[7:]}", f"+86-{n[:3]}-{n[3:7]}-{n[7:]}", f"86{n}", f"+86 {n[:3]} {n[3:7]} {n[7:]}"]
    )


def _birth_date(rng: random.Random, today: dt.date) -> dt.date:
    # About 2% are children: PIPL treats under-14s' data as sensitive (guardian consent).
    if rng.random() < 0.02:
        return today - dt.timedelta(days=rng.randint(8 * 365, 14 * 365 - 30))
    year = min(today.year - 15, max(1960, round(rng.triangular(1960, today.year - 15, 1993))))
    return dt.date(year, rng.randint(1, 12), rng.randint(1, 28))


def _person(rng: random.Random, today: dt.date, phones: _Unique, emails: _Unique) -> Person:
    roll = rng.random()
    gender = rng.choice("MF")
    province, city = _weighted(rng, [((p, c), w) for p, c, w in PLACES])
    handle = "".join(rng.choices(PINYIN, k=2))
    domains = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "foxmail.com"]
    if roll < 0.85:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN[gender]) for _ in range(rng.choice((1, 2, 2))))
        locale = "zh-hans"
    elif roll < 0.93:
        name, gender = rng.choice(TRADITIONAL)
        locale, domains = "zh-hant", ["gmail.com", "yahoo.com.tw", "hotmail.com"]
    else:
        (first, first_latin), (last, last_latin) = rng.choice(RU_FIRST[gender]), rng.choice(RU_LAST)
        name = f"{first} {last}{'а' if gender == 'F' else ''}"
        handle = f"{first_latin}.{last_latin}{'a' if gender == 'F' else ''}"
        locale, domains = "ru", ["yandex.ru", "mail.ru", "gmail.com"]
    if locale == "ru" and rng.random() < 0.5:
        phone = phones.draw(lambda: f"+7{rng.choice(RU_PREFIXES)}{rng.randrange(10**7):07d}")
    else:
        phone = phones.draw(lambda: f"+86{rng.choice(CN_PREFIXES)}{rng.randrange(10**8):08d}")
    email = ""
    if rng.random() < 0.4:
        email = emails.draw(
            lambda: (
                f"{rng.randint(10_000, 3_999_999_999)}@qq.com"
                if locale == "zh-hans" and rng.random() < 0.4
                else f"{handle}{rng.randint(1, 9999)}@{rng.choice(domains)}"
            )
        )
    person = Person(name, gender, _birth_date(rng, today), province, city, locale, phone, email)
    person.stage = _weighted(rng, STAGES)
    person.order_days = _order_days(person.stage, rng)
    return person


def _order_days(stage: str, rng: random.Random) -> list[int]:
    """Days ago of each order, so ``refresh_member_metrics`` puts the person in ``stage``.

    Each order also gets up to a day of minutes, so every range keeps a day of margin
    from the thresholds (30 / 90 / 180 days, 3 orders in 365).
    """
    if stage == LifecycleStage.PROSPECT:
        return []
    if stage == LifecycleStage.NEW:
        return sorted(rng.sample(range(1, 29), rng.randint(1, 2)))
    if stage == LifecycleStage.LOYAL:
        return [rng.randint(1, 80), *rng.sample(range(85, 360), rng.randint(2, 6))]
    if stage == LifecycleStage.ACTIVE:  # at most two orders in the year: not loyal
        return [rng.randint(31, 88), *rng.sample(range(95, 360), rng.randint(0, 1)),
                *rng.sample(range(400, 720), rng.randint(0, 2))]  # fmt: skip
    if stage == LifecycleStage.AT_RISK:
        return [rng.randint(92, 178), *rng.sample(range(200, 720), rng.randint(0, 2))]
    return [rng.randint(185, 720) for _ in range(rng.randint(1, 3))]


def _brands() -> dict[str, list[tuple[Store, int]]]:
    stores: dict[str, list[tuple[Store, int]]] = {}
    for spec in BRANDS:
        brand = Brand.objects.create(
            code=spec["code"], name=spec["name"], legal_name=spec["legal_name"], color=spec["color"],
            privacy_email=spec["privacy_email"], address=spec["address"],
        )  # fmt: skip
        stores[spec["code"]] = [
            (Store.objects.create(brand=brand, code=code, name=name, platform=platform, city=city), weight)
            for code, name, platform, city, weight in spec["stores"]
        ]
    return stores


class _Planner:
    """Decides which stores know each person, and what each store's record says."""

    def __init__(self, stores: dict[str, list[tuple[Store, int]]], rng: random.Random, now: dt.datetime) -> None:
        self.stores, self.rng, self.now = stores, rng, now
        self.next_id: Counter[int] = Counter()
        self.multi_seen = 0

    def member_id(self, store: Store) -> str:
        # Increasing with random gaps: unique per store, and looks like a real export.
        self.next_id[store.pk] += self.rng.randint(1, 9)
        return f"{ID_PREFIX.get(store.platform, 'M')}{10_000_000 + self.next_id[store.pk]}"

    def joined(self, days: int) -> dt.datetime:
        return self.now - dt.timedelta(days=days, minutes=self.rng.randint(0, 1439))

    def base(self, person: Person, store: Store) -> dict[str, Any]:
        values = {"name": person.name, "gender": person.gender, "birth_date": person.birth_date,
                  "province": person.province, "city": person.city, "locale": person.locale,
                  "tier": _weighted(self.rng, TIERS), "points": self.rng.randint(0, 8000)}  # fmt: skip
        if store.platform in THIN_PLATFORMS:
            values["birth_date"] = None
            values["gender"] = "" if self.rng.random() < 0.5 else person.gender
        return values

    def plan(self, person: Person) -> None:
        rng = self.rng
        home = "lotus" if rng.random() < 0.72 else "northwind"
        first = _weighted(rng, self.stores[home])
        extra: list[Store] = []
        if rng.random() < MULTI_STORE_SHARE:
            pool = [s for s, _ in self.stores[home] if s.pk != first.pk]
            if rng.random() < CROSS_BRAND_SHARE:
                pool = [s for code, group in self.stores.items() if code != home for s, _ in group]
            extra = rng.sample(pool, k=rng.choice((1, 1, 1, 2)))
        used = [first, *extra]
        if any(s.platform == "wechat" for s in used) and rng.random() < 0.5:
            person.unionid = "o" + "".join(rng.choices(UNIONID_ALPHABET, k=27))
        split = bool(extra) and self.multi_seen % SPLIT_EVERY == 0
        self.multi_seen += bool(extra)
        if split and not person.email:
            person.email = f"{person.phone[-8:]}@qq.com"  # phones are unique, so is this
        # Joined before the first order; later stores joined later still.
        first_days = min(MAX_JOIN_DAYS, max(person.order_days, default=0) + rng.randint(1, 300))
        first_values = {**self.base(person, first), "phone": _phone_variant(person.phone, rng),
                        "joined_at": self.joined(first_days)}  # fmt: skip
        known = {"phone"}
        if person.email and not split:
            first_values["email"] = person.email
            known.add("email")
        if person.unionid and first.platform == "wechat":
            first_values["wechat_unionid"] = person.unionid
            known.add("unionid")
        person.records.append((first, self.member_id(first), first_values))
        for n, store in enumerate(extra):
            values = {**self.base(person, store), "joined_at": self.joined(rng.randint(0, max(first_days - 1, 0)))}
            if store.platform == "pos":
                values["city"] = store.city or values["city"]
            if split and n == 0:
                # Shares nothing with the first record yet: a second member, for now.
                values["email"] = person.email
            else:
                self._link(person, store, values, known)
            person.records.append((store, self.member_id(store), values))
        if split:
            # A later import carries both phone and e-mail and so links the two members.
            unused = [s for s, _ in self.stores[home] if s not in used]
            store = rng.choice(unused)
            values = {**self.base(person, store), "phone": _phone_variant(person.phone, rng),
                      "email": person.email, "joined_at": self.joined(rng.randint(0, 20))}  # fmt: skip
            person.late_records.append((store, self.member_id(store), values))

    def _link(self, person: Person, store: Store, values: dict[str, Any], known: set[str]) -> None:
        """Give a later record at least one contact point an earlier record had, written
        its own way; some records link only by e-mail or unionid, without the phone."""
        options: list[tuple[str, int]] = [("phone", 65)]
        if "email" in known:
            options.append(("email", 20))
        if "unionid" in known and store.platform in ("wechat", "pos"):  # POS issues WeChat member cards
            options.append(("unionid", 15))
        link = _weighted(self.rng, options)
        if link == "phone":
            values["phone"] = _phone_variant(person.phone, self.rng)
            if person.email and self.rng.random() < 0.3:
                values["email"] = person.email
                known.add("email")
        elif link == "email":
            values["email"] = person.email.upper() if self.rng.random() < 0.3 else person.email
        if person.unionid and (link == "unionid" or store.platform == "wechat"):
            values["wechat_unionid"] = person.unionid
            known.add("unionid")


def _resolve(store: Store, store_member_id: str, values: dict[str, Any]) -> int:
    record = StoreRecord.clean(store=store, store_member_id=store_member_id, observed_at=values["joined_at"], **values)
    return services.resolve_store_record(record).member.pk


def _amount(rng: random.Random, median: int) -> Decimal:
    # Log-normal like real baskets: many small orders, a long tail, clipped to 30–3000.
    cents = round(rng.lognormvariate(math.log(median * 100), 0.7))
    return Decimal(min(300_000, max(3_000, cents))).scaleb(-2)


def _orders(people: list[Person], stores: list[Store], rng: random.Random, now: dt.datetime) -> tuple[int, int]:
    """Members' and guests' orders, inserted set-based; returns (member, guest) counts."""
    specs = {spec["code"]: spec for spec in BRANDS}
    counters: Counter[int] = Counter()
    orders: list[Order] = []

    def add(store: Store, member_id: int | None, placed_at: dt.datetime) -> None:
        counters[store.pk] += 1
        spec = specs[store.brand.code]
        orders.append(
            Order(
                store=store,
                external_id=f"{ID_PREFIX.get(store.platform, 'O')}{placed_at:%Y%m%d}{counters[store.pk]:07d}",
                member_id=member_id,
                amount=_amount(rng, spec["median_amount"]),
                placed_at=placed_at,
                categories=rng.sample(spec["categories"], k=rng.choice((1, 1, 2))),
                created_at=placed_at,
            )
        )

    for person in people:
        for days in person.order_days:
            placed_at = now - dt.timedelta(days=days, minutes=rng.randint(0, 1439))
            # Only at stores the person had joined by then; the first one always qualifies.
            joined = [i for i, (_, _, values) in enumerate(person.records) if values["joined_at"] <= placed_at]
            index = rng.choice(joined or [0])
            add(person.records[index][0], person.record_members[index], placed_at)
    member_orders = len(orders)
    for _ in range(member_orders // 3):  # guests ("游客"): about a quarter of all orders
        add(rng.choice(stores), None, now - dt.timedelta(days=rng.randint(0, 730), minutes=rng.randint(0, 1439)))
    Order.objects.bulk_create(orders, batch_size=2000)
    return member_orders, len(orders) - member_orders


def seed_demo(*, members: int, seed: int = 42) -> dict[str, Any]:
    """Create the demo brands, stores, people and orders. Returns a summary."""
    rng = random.Random(seed)
    now = timezone.now()
    with audit.acting_as(audit.Actor(type="system", label="seed_demo")), transaction.atomic():
        stores = _brands()
        phones, emails = _Unique(), _Unique()
        people = [_person(rng, now.date(), phones, emails) for _ in range(members)]
        planner = _Planner(stores, rng, now)
        for person in people:
            planner.plan(person)
        for person in people:
            person.record_members = [_resolve(*plan) for plan in person.records]
        # A person's own later record may already have merged an earlier member away;
        # orders must go to the member that holds the person now.
        survivors = dict(Member.objects.filter(status=Member.Status.MERGED).values_list("pk", "merged_into_id"))
        for person in people:
            person.record_members = [survivors.get(pk, pk) for pk in person.record_members]
            person.member_id = person.record_members[-1]
        # Orders first, then the late records: their merges move orders between members,
        # as they would in production.
        member_orders, guest_orders = _orders(people, [s for g in stores.values() for s, _ in g], rng, now)
        for person in people:
            for plan in person.late_records:
                person.member_id = _resolve(*plan)
        services.refresh_member_metrics(now=now)
    active = Member.objects.active()
    stage_counts = Counter(active.values_list("lifecycle_stage", flat=True))
    return {
        "brands": Brand.objects.count(),
        "stores": Store.objects.count(),
        "records": sum(len(p.records) + len(p.late_records) for p in people),
        "members": active.count(),
        "multi_store_members": active.annotate(n=Count("memberships__store", distinct=True)).filter(n__gte=2).count(),
        "merges": MergeEvent.objects.count(),
        "identities": dict(sorted(Counter(Identity.objects.values_list("kind", flat=True)).items())),
        "memberships": StoreMembership.objects.count(),
        "orders": member_orders + guest_orders,
        "member_orders": member_orders,
        "guest_orders": guest_orders,
        "lifecycle": {stage.value: stage_counts.get(stage.value, 0) for stage in LifecycleStage},
        "people": people,
    }

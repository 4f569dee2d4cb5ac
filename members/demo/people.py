"""Demo people: names in three scripts, places, phones and e-mails that never link
strangers, birth dates (a few children), and order days shaped to a lifecycle stage."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..models import LifecycleStage, Store

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
CN_PREFIXES = [str(p) for p in [*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159,
                                *range(180, 190), 191, 193, 195, 196, 197, 198, 199]]  # fmt: skip
RU_PREFIXES = ["903", "905", "906", "909", "915", "916", "917", "925", "926", "929", "962", "965", "977", "985"]
PINYIN = ["zhang", "wang", "li", "liu", "chen", "yang", "xiao", "mei", "jia", "hui", "ming", "tian", "yu", "xin"]
# Share of people per target lifecycle stage (order histories are shaped to land there).
STAGES = [(LifecycleStage.PROSPECT, 15), (LifecycleStage.NEW, 8), (LifecycleStage.ACTIVE, 20),
          (LifecycleStage.LOYAL, 15), (LifecycleStage.AT_RISK, 17), (LifecycleStage.LAPSED, 25)]  # fmt: skip

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


class Unique:
    """Draws values until one is new: phones and e-mails must not link strangers."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def draw(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self.seen:
            value = make()
        self.seen.add(value)
        return value


def weighted(rng: random.Random, pairs: list[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in pairs], weights=[weight for _, weight in pairs])[0]


def phone_variant(phone: str, rng: random.Random) -> str:
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


def make_person(rng: random.Random, today: dt.date, phones: Unique, emails: Unique) -> Person:
    roll = rng.random()
    gender = rng.choice("MF")
    province, city = weighted(rng, [((p, c), w) for p, c, w in PLACES])
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
    person.stage = weighted(rng, STAGES)
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

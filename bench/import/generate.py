"""Realistic member files for the import benchmark.

    .venv/bin/python bench/import/generate.py --rows 1000000 --out bench/import/data

Writes two files of one brand's stores, as back offices export them (UTF-8 with BOM,
Chinese headers, phones in four formats, a few broken rows):

* ``other.csv``: the brand's JD store, ``--rows`` × 20% people;
* ``members.csv``: the Tmall store, ``--rows`` rows; about 20% of its people are also in
  ``other.csv`` (linked by a phone in another format, the e-mail or the WeChat unionid),
  a few rows link two people already known (merges), ~0.5% rows have errors.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

HEADER = [
    "会员ID", "手机号", "邮箱", "姓名", "性别", "生日", "省份", "城市", "入会时间", "会员等级", "积分",
    "unionid", "短信营销授权", "邮件营销授权", "个性化推荐授权", "授权时间", "备注",
]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉"
PLACES = [("上海", "上海"), ("北京", "北京"), ("广东", "广州"), ("广东", "深圳"), ("浙江", "杭州"), ("江苏", "南京"),
          ("四川", "成都"), ("湖北", "武汉"), ("陕西", "西安"), ("重庆", "重庆")]  # fmt: skip
TIERS = ["普通会员", "银卡", "金卡", "铂金", "钻石"]
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "185", "186",
                   "187", "188", "189", "191", "198", "199"]  # fmt: skip


def phone_format(rng: random.Random, digits: str) -> str:
    kind = rng.random()
    if kind < 0.55:
        return digits
    if kind < 0.75:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if kind < 0.9:
        return f"+86-{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return "86" + digits


class People:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def person(self, n: int) -> dict[str, str]:
        # Each person from their own seed: the same in both files.
        rng = random.Random(self.seed * 1_000_003 + n)
        digits = rng.choice(MOBILE_PREFIXES) + f"{(n * 7919) % 100000000:08d}"
        province, city = rng.choice(PLACES)
        birthday = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 45))
        return {
            "digits": digits,
            "email": f"user{n}@{rng.choice(['qq.com', '163.com', 'example.com', 'gmail.com'])}" if rng.random() < 0.6 else "",
            "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))),
            "gender": rng.choice(["男", "女", "M", "F", ""]),
            "birthday": rng.choice([birthday.isoformat(), birthday.strftime("%Y/%m/%d"),
                                    f"{birthday.year}年{birthday.month}月{birthday.day}日", ""]),
            "province": province,
            "city": city,
            "unionid": f"oU{n:012d}x{rng.randrange(10**6):06d}" if rng.random() < 0.3 else "",
        }  # fmt: skip

    def row(self, member_id: str, p: dict[str, str], *, broken: bool = False) -> list[str]:
        rng = self.rng
        joined = dt.datetime(2019, 1, 1) + dt.timedelta(seconds=rng.randrange(0, 6 * 365 * 86400))
        consent_at = joined + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        sms = rng.choice(["1", "1", "0", "是", "Y", ""]) if rng.random() < 0.7 else ""
        mail = rng.choice(["1", "0", "true"]) if p["email"] and rng.random() < 0.4 else ""
        pers = rng.choice(["1", "0", "否"]) if rng.random() < 0.3 else ""
        phone = phone_format(rng, p["digits"])
        birthday = p["birthday"]
        if broken:
            kind = rng.randrange(3)
            if kind == 0:
                phone = "123-456"
            elif kind == 1:
                birthday = "1990-02-30"
            else:
                sms = "maybe"
        return [
            member_id, phone, p["email"], p["name"], p["gender"], birthday, p["province"], p["city"],
            joined.strftime("%Y-%m-%d %H:%M:%S"), rng.choice(TIERS), str(rng.randrange(0, 20000)), p["unionid"],
            sms, mail, pers, consent_at.strftime("%Y-%m-%d %H:%M:%S") if rng.random() < 0.8 else "",
            rng.choice(["", "", "", "VIP客户", "=HYPERLINK(\"http://x\")"]),
        ]  # fmt: skip


def generate(rows: int, out: Path, seed: int = 42) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    people = People(seed)
    shared = int(rows * 0.2)
    main_path, other_path = out / "members.csv", out / "other.csv"
    # People 0..shared-1 are in both stores; the rest only in the big file.
    with other_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(shared):
            person = people.person(n)
            # The JD store knows them by a different link: keep the phone (any format),
            # sometimes only the e-mail or the unionid.
            row = people.row(f"JD{n:09d}", person)
            if person["email"] and people.rng.random() < 0.15:
                row[1] = ""
            writer.writerow(row)
    with main_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            person = people.person(n)
            broken = people.rng.random() < 0.005
            row = people.row(f"TM{n:09d}", person, broken=broken)
            if n and n % 5000 == 0:
                # A record linking two people known from the JD store: a merge.
                other = people.person(n - 1)
                row[2] = other["email"] or row[2]
            writer.writerow(row)
    return main_path, other_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    main_path, other_path = generate(args.rows, args.out, args.seed)
    print(f"wrote {main_path} and {other_path}")


if __name__ == "__main__":
    main()

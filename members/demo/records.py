"""Which stores know each demo person and what each store's record says, and the
resolution of those records into members (identities, memberships, merges)."""

from __future__ import annotations

import datetime as dt
import random
import string
from collections import Counter
from typing import Any

from .. import services
from ..identities import StoreRecord
from ..models import Store
from .brands import ID_PREFIX, THIN_PLATFORMS
from .people import Person, phone_variant, weighted

TIERS = [("普通会员", 55), ("银卡", 25), ("金卡", 15), ("钻石卡", 5)]
UNIONID_ALPHABET = string.ascii_letters + string.digits + "-_"
MULTI_STORE_SHARE = 0.30
CROSS_BRAND_SHARE = 0.10  # of the multi-store people
SPLIT_EVERY = 25  # every n-th multi-store person arrives as two members first
MAX_JOIN_DAYS = 1095


class Planner:
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
                  "tier": weighted(self.rng, TIERS), "points": self.rng.randint(0, 8000)}  # fmt: skip
        if store.platform in THIN_PLATFORMS:
            values["birth_date"] = None
            values["gender"] = "" if self.rng.random() < 0.5 else person.gender
        return values

    def plan(self, person: Person) -> None:
        rng = self.rng
        home = "lotus" if rng.random() < 0.72 else "northwind"
        first = weighted(rng, self.stores[home])
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
        first_values = {**self.base(person, first), "phone": phone_variant(person.phone, rng),
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
            values = {**self.base(person, store), "phone": phone_variant(person.phone, rng),
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
        link = weighted(self.rng, options)
        if link == "phone":
            values["phone"] = phone_variant(person.phone, self.rng)
            if person.email and self.rng.random() < 0.3:
                values["email"] = person.email
                known.add("email")
        elif link == "email":
            values["email"] = person.email.upper() if self.rng.random() < 0.3 else person.email
        if person.unionid and (link == "unionid" or store.platform == "wechat"):
            values["wechat_unionid"] = person.unionid
            known.add("unionid")


def resolve(store: Store, store_member_id: str, values: dict[str, Any]) -> int:
    record = StoreRecord.clean(store=store, store_member_id=store_member_id, observed_at=values["joined_at"], **values)
    return services.resolve_store_record(record).member.pk

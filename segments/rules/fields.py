"""The catalogue of segment rules: the fields a rule can name, the operators each kind
of field takes, the limits on a rule's size, how values are read, and ``RuleError``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from consent.models import Channel, Preference
from members.models import Gender, LifecycleStage, Platform

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_VALUES = 1000
MAX_WITHIN_DAYS = 3660
# Values a rule may compare with: anything outside is a typing error, and would otherwise
# overflow a column type, a date or a ``timedelta`` while the rule is compiled or run.
MAX_DAYS_AGO = 36600  # last_order_days, within_last_days: a hundred years
MAX_PLACES = 6  # decimal places of a number
MAX_TEXT = 200  # characters of a text value
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
_INT4 = 2**31 - 1

TEXT_OPS = ("=", "!=", "in", "not_in", "is_set", "is_not_set")
CHOICE_OPS = ("=", "!=", "in", "not_in")
NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "between")
DATE_OPS = ("=", ">", ">=", "<", "<=", "between", "within_last_days")
TAG_OPS = ("in", "all", "not_in")
NO_VALUE_OPS = ("is_set", "is_not_set")


class RuleError(ValueError):
    """Rules that cannot be built; ``errors`` lists ``(path, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in errors))

    @property
    def messages(self) -> list[str]:
        return [f"{path}: {message}" if path else message for path, message in self.errors]


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, choice, number, date, tags
    group: str
    help: str | Promise
    window: bool = False  # accepts within_days
    choices: tuple[str, ...] = ()
    # The range of a number field's values (what the column and the question allow).
    low: int | None = None
    high: int | None = None

    @property
    def group_label(self) -> str | Promise:
        return GROUPS.get(self.group, self.group)

    @property
    def ops(self) -> tuple[str, ...]:
        return {"text": TEXT_OPS, "choice": CHOICE_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "tags": TAG_OPS}[
            self.kind
        ]


def _values(choices: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(value) for value, _label in choices)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        Field("city", "text", "profile", _("City, as written in store records (上海, 杭州).")),
        Field("province", "text", "profile", _("Province (浙江, 广东).")),
        Field("gender", "choice", "profile", _("M or F."), choices=_values(Gender.choices)),
        Field("age", "number", "profile", _("Age in whole years today, from the birth date."), low=0, high=150),
        Field("birth_month", "number", "profile", _("Month of birth, 1-12 (birthday campaigns)."), low=0, high=13),
        Field("locale", "text", "profile", _("Language code (zh-hans, zh-hant, en, ru).")),
        Field("lifecycle_stage", "choice", "profile", _("Lifecycle stage."), choices=_values(LifecycleStage.choices)),
        Field("member_since", "date", "profile", _("When the person first became known to the platform.")),
        Field("store", "text", "membership", _("Code of one of the brand's stores the person is a member of.")),
        Field(
            "platform", "choice", "membership", _("Platform of a store membership."), choices=_values(Platform.choices)
        ),
        Field("tier", "text", "membership", _("Membership tier at one of the brand's stores.")),
        Field(
            "points",
            "number",
            "membership",
            _("Points of a membership at one of the brand's stores."),
            low=-_INT4 - 1,
            high=_INT4,
        ),
        Field("joined", "date", "membership", _("When the person joined one of the brand's stores.")),
        Field(
            "orders", "number", "orders", _("Number of orders at the brand's stores."), window=True, low=0, high=_INT4
        ),
        Field(
            "total_spent",
            "number",
            "orders",
            _("Sum of order amounts at the brand's stores."),
            window=True,
            low=-(10**12),
            high=10**12,
        ),
        Field(
            "last_order_days",
            "number",
            "orders",
            _("Days since the last order at the brand's stores."),
            low=0,
            high=MAX_DAYS_AGO,
        ),
        Field("category", "tags", "orders", _("Category of an order at the brand's stores."), window=True),
        Field("topics", "tags", "preferences", _("Topics the person asked to hear about.")),
        Field(
            "promotion_types",
            "tags",
            "preferences",
            _("Promotion types the person likes."),
            choices=_values(Preference.PromotionType.choices),
        ),
        Field("preferred_channels", "tags", "preferences", _("Preferred channels."), choices=_values(Channel.choices)),
    ]
}
LEAF_KEYS = {"field", "op", "value", "within_days"}
# Display names of the field groups in the admin's rule editor.
GROUPS = {
    "profile": _("profile"),
    "membership": _("membership"),
    "orders": _("orders"),
    "preferences": _("preferences"),
}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def parse_date(value: Any) -> dt.date | None:
    """A ``YYYY-MM-DD`` date from 1900 to 2999 (outside: a typing error, and a date one day
    from ``date.max`` overflows when the rule compiles), or None."""
    if not isinstance(value, str):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if EARLIEST_DATE <= day <= LATEST_DATE else None


# Text a database cannot compare with: PostgreSQL text holds no NUL, and a lone UTF-16
# surrogate (JSON's "\ud800") cannot be encoded for the query.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

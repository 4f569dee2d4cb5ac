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
    # What the builder calls it (translated); the rules JSON always uses ``name``.
    label: str | Promise = ""

    @property
    def group_label(self) -> str | Promise:
        return GROUPS.get(self.group, self.group)

    @property
    def ops(self) -> tuple[str, ...]:
        return {"text": TEXT_OPS, "choice": CHOICE_OPS, "number": NUMBER_OPS, "date": DATE_OPS, "tags": TAG_OPS}[
            self.kind
        ]


# Re-consent (issue 25 item 9): consent given under an older version of a purpose's notice.
OLDER_NOTICE = "older_notice"


def _values(choices: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(value) for value, _label in choices)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in [
        Field("city", "text", "profile", _("City, as written in store records (上海, 杭州)."), label=_("City")),
        Field("province", "text", "profile", _("Province (浙江, 广东)."), label=_("Province")),
        Field("gender", "choice", "profile", _("M or F."), choices=_values(Gender.choices), label=_("Gender")),
        Field(
            "age",
            "number",
            "profile",
            _("Age in whole years today, from the birth date."),
            low=0,
            high=150,
            label=_("Age"),
        ),
        Field(
            "birth_month",
            "number",
            "profile",
            _("Month of birth, 1-12 (birthday campaigns)."),
            low=0,
            high=13,
            label=_("Birth month"),
        ),
        Field("locale", "text", "profile", _("Language code (zh-hans, zh-hant, en, ru)."), label=_("Language")),
        Field(
            "lifecycle_stage",
            "choice",
            "profile",
            _("Lifecycle stage."),
            choices=_values(LifecycleStage.choices),
            label=_("Lifecycle stage"),
        ),
        Field(
            "member_since",
            "date",
            "profile",
            _("When the person first became known to the platform."),
            label=_("Known since"),
        ),
        Field(
            "store",
            "text",
            "membership",
            _("Code of one of the brand's stores the person is a member of."),
            label=_("Store"),
        ),
        Field(
            "platform",
            "choice",
            "membership",
            _("Platform of a store membership."),
            choices=_values(Platform.choices),
            label=_("Platform"),
        ),
        Field("tier", "text", "membership", _("Membership tier at one of the brand's stores."), label=_("Tier")),
        Field(
            "points",
            "number",
            "membership",
            _("Points of a membership at one of the brand's stores."),
            low=-_INT4 - 1,
            high=_INT4,
            label=_("Points"),
        ),
        Field(
            "joined",
            "date",
            "membership",
            _("When the person joined one of the brand's stores."),
            label=_("Joined a store"),
        ),
        Field(
            "orders",
            "number",
            "orders",
            _("Number of orders at the brand's stores."),
            window=True,
            low=0,
            high=_INT4,
            label=_("Orders"),
        ),
        Field(
            "total_spent",
            "number",
            "orders",
            _("Sum of order amounts at the brand's stores."),
            window=True,
            low=-(10**12),
            high=10**12,
            label=_("Total spent"),
        ),
        Field(
            "last_order_days",
            "number",
            "orders",
            _("Days since the last order at the brand's stores."),
            low=0,
            high=MAX_DAYS_AGO,
            label=_("Days since the last order"),
        ),
        Field(
            "category",
            "tags",
            "orders",
            _("Category of an order at the brand's stores."),
            window=True,
            label=_("Category bought"),
        ),
        Field(
            "topics", "tags", "preferences", _("Topics the person asked to hear about."), label=_("Topics of interest")
        ),
        Field(
            "promotion_types",
            "tags",
            "preferences",
            _("Promotion types the person likes."),
            choices=_values(Preference.PromotionType.choices),
            label=_("Promotion types liked"),
        ),
        Field(
            "preferred_channels",
            "tags",
            "preferences",
            _("Preferred channels."),
            choices=_values(Channel.choices),
            label=_("Preferred channels"),
        ),
        Field(
            OLDER_NOTICE,
            "tags",
            "consent",
            _(
                "Codes of the brand's purposes: the person's standing consent to one of them rests on an older "
                "version of the purpose's notice than its newest (ask them again after a notice changed)."
            ),
            label=_("Consented under an older notice"),
        ),
    ]
}
LEAF_KEYS = {"field", "op", "value", "within_days"}
# Display names of the field groups in the admin's rule editor.
GROUPS = {
    "profile": _("profile"),
    "membership": _("membership"),
    "orders": _("orders"),
    "preferences": _("preferences"),
    "consent": _("consent"),
}

# How the builder reads each operator, per kind of field (the JSON keeps the symbols).
OP_LABELS: dict[str, dict[str, str | Promise]] = {
    "text": {
        "=": _("is"),
        "!=": _("is not"),
        "in": _("is one of"),
        "not_in": _("is none of"),
        "is_set": _("is known"),
        "is_not_set": _("is unknown"),
    },
    "choice": {"=": _("is"), "!=": _("is not"), "in": _("is one of"), "not_in": _("is none of")},
    "number": {
        "=": _("equals"),
        "!=": _("does not equal"),
        ">": _("more than"),
        ">=": _("at least"),
        "<": _("less than"),
        "<=": _("at most"),
        "between": _("between"),
    },
    "date": {
        "=": _("on"),
        ">": _("after"),
        ">=": _("on or after"),
        "<": _("before"),
        "<=": _("on or before"),
        "between": _("between"),
        "within_last_days": _("in the last … days"),
    },
    "tags": {"in": _("any of"), "all": _("all of"), "not_in": _("none of")},
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

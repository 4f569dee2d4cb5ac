"""When a data-subject request must be answered, per jurisdiction, and how far an
extension moves that date.

- **China, PIPL** (Arts. 44-50): requests are to be handled "promptly" and a refusal must
  give its reasons (Art. 50); no period and no extension are fixed in the law. The 2019
  rules on apps' unlawful collection (《App违法违规收集使用个人信息行为认定方法》 item 6)
  cap correction, deletion and account cancellation at 15 working days; we default to 15
  calendar days (``DSR_DUE_DAYS``), which is inside that cap, and to no extension
  (``DSR_CN_EXTENSION_DAYS`` = 0; set it if the brand's published policy promises one).
- **EU, GDPR** Art. 12(3): "within one month of receipt", extendable "by two further months
  where necessary", the person being told of the extension and its reasons within the
  first month. Months are counted as in Regulation 1182/71 Art. 3(2)(c): the same day
  of the month, or the month's last day when it has no such day (31 January → 28/29
  February). A deadline on a weekend is not moved: answering earlier is always allowed.
- **Russia, 152-FZ** Art. 14(3) and Art. 20(1)-(2) as amended by Federal Law 266-FZ of
  14.07.2022 (in force 1 September 2022): 10 working days from the request, extendable by
  at most 5 working days when the operator sends a reasoned notice before the period ends.
  Corrections, and the destruction of data, are due within 7 working days (Art. 20(3)),
  with no extension (``DSR_RU_CORRECTION_WORKING_DAYS``).
  Working days follow the Russian production calendar (public holidays and the
  government's transfers of days off, including working Saturdays), from the
  ``holidays`` package.

A deadline is the end (23:59:59) of its last day in ``TIME_ZONE``. An extension is
possible once, and only before the current deadline has passed (both laws ask for the
notice within the original period).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import holidays
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Brand

Jurisdiction = Brand.Jurisdiction

DAYS, MONTHS, WORKING_DAYS = "days", "months", "working_days"


@dataclass(frozen=True)
class Rule:
    jurisdiction: str
    unit: str
    due: int
    extension: int  # 0: the deadline cannot be extended
    law: Any  # a short citation, translatable

    @property
    def extendable(self) -> bool:
        return self.extension > 0


CORRECTION_KINDS = ("correction", "deletion")  # DataSubjectRequest.Kind values


def rule_for(jurisdiction: str, kind: str = "") -> Rule:
    """The rule of ``jurisdiction`` for a request of ``kind``, read from settings on each
    call (tests override them)."""
    if jurisdiction == Jurisdiction.RU and kind in CORRECTION_KINDS:
        return Rule(Jurisdiction.RU, WORKING_DAYS, settings.DSR_RU_CORRECTION_WORKING_DAYS, 0, _("152-FZ Art. 20(3)"))
    if jurisdiction == Jurisdiction.EU:
        return Rule(
            Jurisdiction.EU, MONTHS, settings.DSR_GDPR_MONTHS, settings.DSR_GDPR_EXTENSION_MONTHS, _("GDPR Art. 12(3)")
        )
    if jurisdiction == Jurisdiction.RU:
        return Rule(
            Jurisdiction.RU,
            WORKING_DAYS,
            settings.DSR_RU_WORKING_DAYS,
            settings.DSR_RU_EXTENSION_WORKING_DAYS,
            _("152-FZ Arts. 14(3), 20"),
        )
    if jurisdiction == Jurisdiction.CN:
        return Rule(Jurisdiction.CN, DAYS, settings.DSR_DUE_DAYS, settings.DSR_CN_EXTENSION_DAYS, _("PIPL Art. 50"))
    raise ValueError(f"unknown jurisdiction {jurisdiction!r}")


@lru_cache(maxsize=1)
def _russian_calendar() -> holidays.HolidayBase:
    return holidays.country_holidays("RU")


def is_russian_working_day(day: dt.date) -> bool:
    return bool(_russian_calendar().is_working_day(day))


def add_months(day: dt.date, months: int) -> dt.date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def add_working_days(day: dt.date, count: int) -> dt.date:
    """The ``count``-th Russian working day after ``day`` (``day`` itself never counts)."""
    while count > 0:
        day += dt.timedelta(days=1)
        if is_russian_working_day(day):
            count -= 1
    return day


def _add(unit: str, day: dt.date, count: int) -> dt.date:
    if unit == MONTHS:
        return add_months(day, count)
    if unit == WORKING_DAYS:
        return add_working_days(day, count)
    return day + dt.timedelta(days=count)


def end_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(23, 59, 59)))


def local_date(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment)


def due_at(jurisdiction: str, received_at: dt.datetime, kind: str = "") -> dt.datetime:
    rule = rule_for(jurisdiction, kind)
    return end_of_day(_add(rule.unit, local_date(received_at), rule.due))


def extended_due_at(
    jurisdiction: str, *, received_at: dt.datetime, due: dt.datetime, kind: str = ""
) -> dt.datetime | None:
    """The deadline after the one extension the rule allows, or None if it allows none.
    Months count from receipt (one month + two = three months after receipt); days and
    working days from the current deadline."""
    rule = rule_for(jurisdiction, kind)
    if not rule.extendable:
        return None
    if rule.unit == MONTHS:
        return end_of_day(add_months(local_date(received_at), rule.due + rule.extension))
    return end_of_day(_add(rule.unit, local_date(due), rule.extension))


def jurisdiction_for(member_id: int, kind: str = "") -> str:
    """The jurisdiction of a new request: among the brands holding the person's store
    memberships, the one whose deadline comes first (so every controller's deadline is
    met); ``DSR_DEFAULT_JURISDICTION`` for a person with no membership. One query."""
    from members.models import StoreMembership

    found = set(
        StoreMembership.objects.filter(member_id=member_id).values_list("store__brand__jurisdiction", flat=True)
    )
    found &= set(Jurisdiction.values)
    if not found:
        return settings.DSR_DEFAULT_JURISDICTION
    now = timezone.now()
    return min(sorted(found), key=lambda j: due_at(j, now, kind))

"""Formatting of the dashboard's table cells."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def cell(value: Any) -> str:
    """A table cell: grouped numbers, ISO dates, a dash for nothing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return number_format(value, force_grouping=True)
    if isinstance(value, float | Decimal):
        return number_format(value, decimal_pos=1, force_grouping=True)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)

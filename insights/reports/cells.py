"""How one cell of the compliance report reads on the page and in the PDF: local times to
the minute, "—" for nothing, yes/no for booleans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext


def when(value: dt.datetime | dt.date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as people read it in the report: local time, minutes; "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime(fmt)


def text(value: Any) -> str:
    """A cell as the page and the PDF show it: "—" for nothing, yes/no for booleans."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    return str(value)

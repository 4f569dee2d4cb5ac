"""A chart's description (``Chart``) and the formats its summaries and tables share."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from consent.models import Channel


def num(value: int | Decimal | float) -> str:
    return number_format(value, force_grouping=True)


def pct(part: int | Decimal, whole: int | Decimal = 1) -> str:
    if not whole:
        return "–"
    return number_format(Decimal(part) * 100 / Decimal(whole), decimal_pos=1) + "%"


def rate(value: Decimal | None) -> float | None:
    return None if value is None else float((value * 100).quantize(Decimal("0.1")))


def choice_label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def channel_label(value: str) -> str:
    return choice_label(Channel, value) if value else _("no channel")


@dataclass
class Chart:
    slug: str
    title: str
    summary: str
    columns: list[str]
    rows: list[list[Any]]
    kind: str = "bar"  # bar, line or none (a table and tiles only)
    labels: list[str] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    stacked: bool = False
    horizontal: bool = False
    percent: bool = False
    tiles: list[tuple[str, str, str]] = field(default_factory=list)  # (label, value, tone)
    # Admin pages that go further (label, URL): shown to staff allowed to open them.
    links: list[tuple[str, str]] = field(default_factory=list)
    links_permission: str = ""

    @property
    def json_id(self) -> str:
        return f"chart-{self.slug}-data"

    @property
    def empty(self) -> bool:
        return not self.rows

    def config(self) -> dict[str, Any]:
        """What static/insights/dashboard.js needs to draw the chart."""
        return {
            "kind": self.kind,
            "title": self.title,
            "labels": self.labels,
            "datasets": self.datasets,
            "stacked": self.stacked,
            "horizontal": self.horizontal,
            "percent": self.percent,
        }

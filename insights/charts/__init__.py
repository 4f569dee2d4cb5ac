"""The dashboard's charts: the figures (``insights.figures``) turned into one description
per chart that serves the Chart.js canvas, the visible table, the text summary and the
CSV download alike, so the four can never disagree.

``base`` holds ``Chart`` and the number formats; the builders are grouped by what they
show: ``audience`` (platforms, stores, overlap, capture rate), ``consents`` (who can be
contacted, opt-ins, withdrawals), ``lifecycle`` and ``data_requests``. ``BUILDERS`` lists
them in the dashboard's order, by slug.
"""

from __future__ import annotations

from ..figures import Figures
from .audience import capture_chart, overlap_chart, platforms_chart, stores_chart
from .base import Chart
from .consents import contactable_chart, opt_in_chart, withdrawals_chart
from .data_requests import requests_chart
from .lifecycle import lifecycle_chart, lifecycle_moves_chart
from .reconsent import reconsent_chart

__all__ = ["BUILDERS", "Chart", "charts"]

BUILDERS = {
    "data-requests": requests_chart,
    "platforms": platforms_chart,
    "stores": stores_chart,
    "overlap": overlap_chart,
    "contactable": contactable_chart,
    "opt-in-rate": opt_in_chart,
    "withdrawals": withdrawals_chart,
    "reconsent": reconsent_chart,
    "capture-rate": capture_chart,
    "lifecycle": lifecycle_chart,
    "lifecycle-moves": lifecycle_moves_chart,
}


def charts(figures: Figures) -> list[Chart]:
    return [build(figures) for build in BUILDERS.values()]

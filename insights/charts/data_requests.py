"""Data requests: open, overdue, due soon, received and answered (tiles, no chart)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from ..figures import Figures
from .base import Chart, num


def requests_chart(f: Figures) -> Chart:
    r = f.requests
    days = settings.DASHBOARD_DUE_SOON_DAYS
    items = [
        (_("Open"), r["open"], "neutral"),
        (_("Overdue"), r["overdue"], "bad" if r["overdue"] else "good"),
        (_("Due within %(days)s days") % {"days": days}, r["due_soon"], "warn" if r["due_soon"] else "good"),
        (_("Received in the period"), r["received"], "neutral"),
        (_("Answered in the period"), r["answered"], "neutral"),
    ]
    return Chart(
        slug="data-requests",
        title=_("Data requests"),
        summary=_("%(open)s open now: %(overdue)s overdue, %(soon)s due within %(days)s days.")
        % {"open": num(r["open"]), "overdue": num(r["overdue"]), "soon": num(r["due_soon"]), "days": days},
        columns=[_("Data requests"), _("Count")],
        rows=[[label, n] for label, n, _tone in items],
        kind="none",
        tiles=[(label, num(n), tone) for label, n, tone in items],
    )

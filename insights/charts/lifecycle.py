"""Lifecycle stages month over month, and the moves between them."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from members.models import LifecycleStage

from ..figures import Figures
from .base import Chart, num, pct


def lifecycle_chart(f: Figures) -> Chart:
    stages = LifecycleStage.values
    months = f.lifecycle.months
    columns = [_("Month"), *(str(LifecycleStage(s).label) for s in stages), _("Changed stage")]
    rows = [
        [month.strftime("%Y-%m"), *(f.lifecycle.distribution[month].get(s, 0) for s in stages),
         f.lifecycle.moved(month)]
        for month in months
    ]  # fmt: skip
    rows.append([_("now"), *(f.lifecycle_now.get(s, 0) for s in stages), None])
    total = sum(f.lifecycle_now.values())
    largest = max(stages, key=lambda s: f.lifecycle_now.get(s, 0))
    summary = ngettext(
        "Now %(total)s member; the largest stage is %(stage)s (%(share)s).",
        "Now %(total)s members; the largest stage is %(stage)s (%(share)s).",
        total,
    ) % {
        "total": num(total),
        "stage": LifecycleStage(largest).label,
        "share": pct(f.lifecycle_now.get(largest, 0), total),
    }
    if months:
        moved = f.lifecycle.moved(months[-1])
        summary += " " + ngettext(
            "%(moved)s member changed stage in the month before %(month)s.",
            "%(moved)s members changed stage in the month before %(month)s.",
            moved,
        ) % {
            "moved": num(moved),
            "month": months[-1].strftime("%Y-%m"),
        }
    else:
        summary += " " + _("No monthly snapshot falls in the period yet (taken on the first night of each month).")
    labels = [row[0] for row in rows]
    return Chart(
        slug="lifecycle",
        title=_("Lifecycle stages month over month"),
        summary=summary,
        columns=columns,
        rows=rows if total or months else [],
        labels=labels,
        datasets=[
            {"label": str(LifecycleStage(s).label), "data": [row[1 + i] for row in rows]} for i, s in enumerate(stages)
        ],
        stacked=True,
    )


def lifecycle_moves_chart(f: Figures) -> Chart:
    month = f.lifecycle.months[-1] if f.lifecycle.months else None
    moves = f.lifecycle.moves.get(month, {}) if month else {}
    changed = sorted(
        ((before, after, n) for (before, after), n in moves.items() if before and before != after),
        key=lambda move: (-move[2], move[0], move[1]),
    )
    labels = [f"{LifecycleStage(b).label} → {LifecycleStage(a).label}" for b, a, _n in changed]
    return Chart(
        slug="lifecycle-moves",
        title=_("Moves between lifecycle stages"),
        summary=(
            _("Between the snapshots of %(before)s and %(month)s, the largest move was %(move)s (%(count)s).")
            % {
                "before": (month - dt.timedelta(days=1)).strftime("%Y-%m"),
                "month": month.strftime("%Y-%m"),
                "move": labels[0],
                "count": num(changed[0][2]),
            }
            if changed
            else _("No moves between stages recorded in the period.")
        ),
        columns=[pgettext("lifecycle stage", "From"), pgettext("lifecycle stage", "To"), _("Members")],
        rows=[[LifecycleStage(b).label, LifecycleStage(a).label, n] for b, a, n in changed],
        labels=labels,
        datasets=[{"label": _("Members"), "data": [n for _b, _a, n in changed]}],
        horizontal=True,
    )

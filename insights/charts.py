"""The dashboard's charts: the figures (``insights.figures``) turned into one description
per chart that serves the Chart.js canvas, the visible table, the text summary and the
CSV download alike, so the four can never disagree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from consent.models import Channel, SourceType
from members.models import LifecycleStage, Platform

from .figures import Figures

# --- Chart descriptions ---------------------------------------------------------------------


def _n(value: int | Decimal | float) -> str:
    return number_format(value, force_grouping=True)


def _pct(part: int | Decimal, whole: int | Decimal = 1) -> str:
    if not whole:
        return "–"
    return number_format(Decimal(part) * 100 / Decimal(whole), decimal_pos=1) + "%"


def _rate(value: Decimal | None) -> float | None:
    return None if value is None else float((value * 100).quantize(Decimal("0.1")))


def _label(choices: Any, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _channel(value: str) -> str:
    return _label(Channel, value) if value else _("no channel")


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


def platforms_chart(f: Figures) -> Chart:
    ordered = sorted(f.platforms.items(), key=lambda item: (-item[1], item[0]))
    total = sum(by_store.members for by_store in f.stores)
    top = ordered[0] if ordered else None
    summary = (
        _("%(platforms)s platforms; the most members are on %(top)s (%(count)s).")
        % {"platforms": len(ordered), "top": _label(Platform, top[0]), "count": _n(top[1])}
        if top and total
        else _("No members yet.")
    )
    labels = [_label(Platform, platform) for platform, _count in ordered]
    return Chart(
        slug="platforms",
        title=_("Members by platform"),
        summary=summary,
        columns=[_("Platform"), _("Members")],
        rows=[[label, count] for label, (_p, count) in zip(labels, ordered, strict=True)],
        labels=labels,
        datasets=[{"label": _("Members"), "data": [count for _p, count in ordered]}],
        horizontal=True,
    )


def stores_chart(f: Figures) -> Chart:
    joined = sum(row.joined for row in f.stores)
    labels = [row.store for row in f.stores]
    return Chart(
        slug="stores",
        title=_("Members by store"),
        summary=_("%(stores)s stores; %(joined)s memberships began in the period.")
        % {"stores": len(f.stores), "joined": _n(joined)},
        columns=[_("Platform"), _("Store"), _("Members"), _("Joined in the period")],
        rows=[[_label(Platform, r.platform), r.store, r.members, r.joined] for r in f.stores],
        labels=labels,
        datasets=[
            {"label": _("Members"), "data": [r.members for r in f.stores]},
            {"label": _("Joined in the period"), "data": [r.joined for r in f.stores]},
        ],
        horizontal=True,
    )


def overlap_chart(f: Figures) -> Chart:
    total = sum(f.overlap.values())
    several = f.overlap[2] + f.overlap[3]
    labels = [_("1 platform"), _("2 platforms"), _("3 or more platforms")]
    counts = [f.overlap[1], f.overlap[2], f.overlap[3]]
    return Chart(
        slug="overlap",
        title=_("People on 1, 2, 3+ platforms"),
        summary=ngettext(
            "%(share)s of members (%(count)s person) are members on two or more platforms.",
            "%(share)s of members (%(count)s people) are members on two or more platforms.",
            several,
        )
        % {"share": _pct(several, total), "count": _n(several)},
        columns=[_("Platforms"), _("People"), _("Share")],
        rows=[[label, n, _pct(n, total)] for label, n in zip(labels, counts, strict=True)] if total else [],
        labels=labels,
        datasets=[{"label": _("People"), "data": counts}],
    )


def contactable_chart(f: Figures) -> Chart:
    labels = [f"{c.purpose_name} · {_channel(c.channel)}" for c in f.contactable]
    top = max(f.contactable, key=lambda c: c.members, default=None)
    if top is None:
        summary = _("The brand has no active purpose.")
    elif top.channel:
        summary = ngettext(
            "Most reachable now: %(purpose)s by %(channel)s, %(count)s person.",
            "Most reachable now: %(purpose)s by %(channel)s, %(count)s people.",
            top.members,
        ) % {
            "purpose": top.purpose_name,
            "channel": _channel(top.channel),
            "count": _n(top.members),
        }
    else:
        summary = ngettext(
            "Most reachable now: %(purpose)s, %(count)s person.",
            "Most reachable now: %(purpose)s, %(count)s people.",
            top.members,
        ) % {
            "purpose": top.purpose_name,
            "count": _n(top.members),
        }
    return Chart(
        slug="contactable",
        title=_("Contactable members per purpose and channel"),
        summary=summary,
        columns=[_("Purpose"), _("Channel"), _("Contactable members")],
        rows=[[c.purpose_name, _channel(c.channel), c.members] for c in f.contactable],
        labels=labels,
        datasets=[{"label": _("Contactable members"), "data": [c.members for c in f.contactable]}],
        horizontal=True,
    )


def opt_in_chart(f: Figures) -> Chart:
    weeks = f.consent.weeks
    opt_ins = sum(f.consent.opt_ins.values())
    withdrawals = sum(sum(by.values()) for by in f.consent.withdrawals.values())
    rows = [
        [
            week,
            f.consent.opt_ins.get(week, 0),
            sum(f.consent.withdrawals.get(week, {}).values()),
            _rate(f.consent.opt_in_rate(week)),
        ]
        for week in weeks
    ]
    return Chart(
        slug="opt-in-rate",
        title=_("Opt-in rate per week"),
        summary=_(
            "Opt-ins (granted or confirmed) as a share of all consent choices recorded each week. "
            "Over the period: %(share)s of %(choices)s choices."
        )
        % {"share": _pct(opt_ins, opt_ins + withdrawals), "choices": _n(opt_ins + withdrawals)},
        columns=[_("Week of"), _("Opt-ins"), _("Withdrawals"), _("Opt-in rate (%)")],
        rows=rows if opt_ins + withdrawals else [],
        kind="line",
        labels=[week.isoformat() for week in weeks],
        datasets=[{"label": _("Opt-in rate (%)"), "data": [row[3] for row in rows]}],
        percent=True,
    )


def withdrawals_chart(f: Figures) -> Chart:
    weeks = f.consent.weeks
    sources = f.consent.withdrawal_sources()
    names = [_label(SourceType, source) for source in sources]
    totals = {source: sum(by.get(source, 0) for by in f.consent.withdrawals.values()) for source in sources}
    total = sum(totals.values())
    top = max(sources, key=lambda s: totals[s], default=None)
    summary = (
        ngettext(
            "%(total)s withdrawal in the period; most through %(source)s (%(count)s).",
            "%(total)s withdrawals in the period; most through %(source)s (%(count)s).",
            total,
        )
        % {"total": _n(total), "source": _label(SourceType, top), "count": _n(totals[top])}
        if top
        else _("No withdrawals in the period.")
    )
    return Chart(
        slug="withdrawals",
        title=_("Withdrawals per week by source"),
        summary=summary,
        columns=[_("Week of"), *names, _("Total")],
        rows=[
            [
                week,
                *(f.consent.withdrawals.get(week, {}).get(s, 0) for s in sources),
                sum(f.consent.withdrawals.get(week, {}).values()),
            ]
            for week in weeks
        ]
        if total
        else [],  # fmt: skip
        labels=[week.isoformat() for week in weeks],
        datasets=[
            {"label": name, "data": [f.consent.withdrawals.get(week, {}).get(source, 0) for week in weeks]}
            for source, name in zip(sources, names, strict=True)
        ],
        stacked=True,
    )


def capture_chart(f: Figures) -> Chart:
    names = {row.store_id: row.store for row in f.stores}
    months = sorted({row.month for row in f.capture})
    stores = sorted({row.store_id for row in f.capture}, key=lambda pk: names.get(pk, ""))
    by_key = {(row.store_id, row.month): row for row in f.capture}
    orders = sum(row.orders for row in f.capture)
    member_orders = sum(row.member_orders for row in f.capture)
    return Chart(
        slug="capture-rate",
        title=_("Capture rate per store and month"),
        summary=_("Orders placed by members as a share of all orders. Over the period: %(share)s of %(orders)s orders.")
        % {"share": _pct(member_orders, orders), "orders": _n(orders)},
        columns=[_("Month"), _("Store"), _("Orders"), _("Orders by members"), _("Capture rate (%)")],
        rows=[
            [
                row.month.strftime("%Y-%m"),
                names.get(row.store_id, row.store_id),
                row.orders,
                row.member_orders,
                _rate(row.rate),
            ]
            for row in f.capture
        ],  # fmt: skip
        kind="line",
        labels=[month.strftime("%Y-%m") for month in months],
        datasets=[
            {
                "label": names.get(store, str(store)),
                "data": [_rate(by_key[(store, m)].rate) if (store, m) in by_key else None for m in months],
            }
            for store in stores
        ],
        percent=True,
    )


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
        "total": _n(total),
        "stage": LifecycleStage(largest).label,
        "share": _pct(f.lifecycle_now.get(largest, 0), total),
    }
    if months:
        moved = f.lifecycle.moved(months[-1])
        summary += " " + ngettext(
            "%(moved)s member changed stage in the month before %(month)s.",
            "%(moved)s members changed stage in the month before %(month)s.",
            moved,
        ) % {
            "moved": _n(moved),
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
    labels = [f"{LifecycleStage(b).label} → {LifecycleStage(a).label}" for b, a, _n2 in changed]
    return Chart(
        slug="lifecycle-moves",
        title=_("Moves between lifecycle stages"),
        summary=(
            _("Between the snapshots of %(before)s and %(month)s, the largest move was %(move)s (%(count)s).")
            % {
                "before": (month - dt.timedelta(days=1)).strftime("%Y-%m"),
                "month": month.strftime("%Y-%m"),
                "move": labels[0],
                "count": _n(changed[0][2]),
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
        % {"open": _n(r["open"]), "overdue": _n(r["overdue"]), "soon": _n(r["due_soon"]), "days": days},
        columns=[_("Data requests"), _("Count")],
        rows=[[label, n] for label, n, _tone in items],
        kind="none",
        tiles=[(label, _n(n), tone) for label, n, tone in items],
    )


BUILDERS = {
    "data-requests": requests_chart,
    "platforms": platforms_chart,
    "stores": stores_chart,
    "overlap": overlap_chart,
    "contactable": contactable_chart,
    "opt-in-rate": opt_in_chart,
    "withdrawals": withdrawals_chart,
    "capture-rate": capture_chart,
    "lifecycle": lifecycle_chart,
    "lifecycle-moves": lifecycle_moves_chart,
}


def charts(figures: Figures) -> list[Chart]:
    return [build(figures) for build in BUILDERS.values()]

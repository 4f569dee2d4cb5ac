"""Where the members are: platforms, stores, people on several platforms, and the share
of orders placed by members (capture rate)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from members.models import Platform

from ..figures import Figures
from .base import Chart, choice_label, num, pct, rate


def platforms_chart(f: Figures) -> Chart:
    ordered = sorted(f.platforms.items(), key=lambda item: (-item[1], item[0]))
    total = sum(by_store.members for by_store in f.stores)
    top = ordered[0] if ordered else None
    summary = (
        _("%(platforms)s platforms; the most members are on %(top)s (%(count)s).")
        % {"platforms": len(ordered), "top": choice_label(Platform, top[0]), "count": num(top[1])}
        if top and total
        else _("No members yet.")
    )
    labels = [choice_label(Platform, platform) for platform, _count in ordered]
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
        % {"stores": len(f.stores), "joined": num(joined)},
        columns=[_("Platform"), _("Store"), _("Members"), _("Joined in the period")],
        rows=[[choice_label(Platform, r.platform), r.store, r.members, r.joined] for r in f.stores],
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
        % {"share": pct(several, total), "count": num(several)},
        columns=[_("Platforms"), _("People"), _("Share")],
        rows=[[label, n, pct(n, total)] for label, n in zip(labels, counts, strict=True)] if total else [],
        labels=labels,
        datasets=[{"label": _("People"), "data": counts}],
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
        % {"share": pct(member_orders, orders), "orders": num(orders)},
        columns=[_("Month"), _("Store"), _("Orders"), _("Orders by members"), _("Capture rate (%)")],
        rows=[
            [
                row.month.strftime("%Y-%m"),
                names.get(row.store_id, row.store_id),
                row.orders,
                row.member_orders,
                rate(row.rate),
            ]
            for row in f.capture
        ],  # fmt: skip
        kind="line",
        labels=[month.strftime("%Y-%m") for month in months],
        datasets=[
            {
                "label": names.get(store, str(store)),
                "data": [rate(by_key[(store, m)].rate) if (store, m) in by_key else None for m in months],
            }
            for store in stores
        ],
        percent=True,
    )

"""Consent: who can be contacted for what now, opt-ins per week and withdrawals by source."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from consent.models import SourceType

from ..figures import Figures
from .base import Chart, channel_label, choice_label, num, pct, rate


def contactable_chart(f: Figures) -> Chart:
    labels = [f"{c.purpose_name} · {channel_label(c.channel)}" for c in f.contactable]
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
            "channel": channel_label(top.channel),
            "count": num(top.members),
        }
    else:
        summary = ngettext(
            "Most reachable now: %(purpose)s, %(count)s person.",
            "Most reachable now: %(purpose)s, %(count)s people.",
            top.members,
        ) % {
            "purpose": top.purpose_name,
            "count": num(top.members),
        }
    return Chart(
        slug="contactable",
        title=_("Contactable members per purpose and channel"),
        summary=summary,
        columns=[_("Purpose"), _("Channel"), _("Contactable members")],
        rows=[[c.purpose_name, channel_label(c.channel), c.members] for c in f.contactable],
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
            rate(f.consent.opt_in_rate(week)),
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
        % {"share": pct(opt_ins, opt_ins + withdrawals), "choices": num(opt_ins + withdrawals)},
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
    names = [choice_label(SourceType, source) for source in sources]
    totals = {source: sum(by.get(source, 0) for by in f.consent.withdrawals.values()) for source in sources}
    total = sum(totals.values())
    top = max(sources, key=lambda s: totals[s], default=None)
    summary = (
        ngettext(
            "%(total)s withdrawal in the period; most through %(source)s (%(count)s).",
            "%(total)s withdrawals in the period; most through %(source)s (%(count)s).",
            total,
        )
        % {"total": num(total), "source": choice_label(SourceType, top), "count": num(totals[top])}
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

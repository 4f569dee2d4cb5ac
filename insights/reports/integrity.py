"""The "Ledger integrity" rows of the compliance report: the last verification of the
ledger's chains, the consent state checked against the ledger in that same run, and the
last checkpoint. Ledger-wide, from the two rows the report already reads."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext

from .cells import when

Row = dict[str, Any]


def _verification(v: Any) -> str:
    if v is None:
        return gettext("never verified; run") + " manage.py verify_consent_ledger"
    if v.ok:
        return gettext("%(when)s: intact (%(n)s events checked)") % {"when": when(v.started_at), "n": v.events_checked}
    return gettext("%(when)s: BROKEN: %(error)s") % {"when": when(v.started_at), "error": v.first_error}


def _projection(v: Any) -> str:
    """What the same run found comparing ConsentState with the fold of the ledger."""
    if v is None:
        return gettext("never verified; run") + " manage.py verify_consent_ledger"
    if v.projection_ok is None:
        return gettext("%(when)s: not checked in this verification") % {"when": when(v.started_at)}
    if v.projection_ok:
        return gettext("%(when)s: equals the ledger") % {"when": when(v.started_at)}
    return ngettext(
        "%(when)s: DIFFERS from the ledger in %(n)s row: %(first)s",
        "%(when)s: DIFFERS from the ledger in %(n)s rows, first: %(first)s",
        v.projection_differences,
    ) % {
        "when": when(v.started_at),
        "n": v.projection_differences,
        "first": v.projection_first_difference,
    }


def _checkpoint(c: Any) -> str:
    if c is None:
        return gettext("none yet")
    return gettext("#%(id)s %(when)s, %(n)s events in %(c)s chains, Merkle root %(root)s") % {
        "id": c.pk,
        "when": when(c.created_at),
        "n": c.event_count,
        "c": c.chain_count,
        "root": c.merkle_root,
    }


def integrity_rows(report: dict[str, Any]) -> list[Row]:
    """Three rows: check, result, and whether the result is bad (stands out on the page)."""
    v, c = report["verification"], report["checkpoint"]
    return [
        {"check": gettext("Last verification"), "result": _verification(v), "broken": v is not None and not v.ok},
        {
            "check": gettext("Consent state against the ledger"),
            "result": _projection(v),
            "broken": v is not None and v.projection_ok is False,
        },
        {"check": gettext("Last checkpoint"), "result": _checkpoint(c), "broken": False},
    ]

"""The compliance report as a PDF document (reportlab's platypus): a title block, the same
tables as the page, and a footer with the brand, period and "page N of M" on every page.

Text is set in STSong-Light, one of the CID fonts every PDF reader ships (Adobe's
Chinese-Simplified font pack), so Chinese brand names, notice titles and labels render
without embedding or downloading a font; it covers Latin text as well.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .figures import ACTIONS

FONT = "STSong-Light"
if FONT not in pdfmetrics.getRegisteredFontNames():
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))

INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#4b5563")
ACCENT = colors.HexColor("#1d4ed8")
RULE = colors.HexColor("#d1d5db")
HEAD_BG = colors.HexColor("#eef2ff")
ALERT = colors.HexColor("#b91c1c")

BODY = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11, textColor=INK, wordWrap="CJK")
CELL = ParagraphStyle("cell", parent=BODY, fontSize=8, leading=10)
NUMBER = ParagraphStyle("number", parent=CELL, alignment=TA_RIGHT)
HEADER_CELL = ParagraphStyle("header_cell", parent=CELL, textColor=INK)
HEADER_RIGHT = ParagraphStyle("header_right", parent=HEADER_CELL, alignment=TA_RIGHT)
TITLE = ParagraphStyle("title", parent=BODY, fontSize=18, leading=24, textColor=ACCENT, spaceAfter=4)
SUBTITLE = ParagraphStyle("subtitle", parent=BODY, fontSize=10, leading=14, textColor=MUTED)
H2 = ParagraphStyle("h2", parent=BODY, fontSize=11.5, leading=16, spaceBefore=10, spaceAfter=4, textColor=INK)
NOTE = ParagraphStyle("note", parent=BODY, fontSize=7.5, leading=10, textColor=MUTED)


def _counts(row: dict[str, Any]) -> list[Any]:
    """A figure row's count per action, in ``ACTIONS`` order, then its total."""
    return [*(row[str(action)] for action in ACTIONS), row["total"]]


def _when(value: dt.datetime | dt.date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return value.strftime(fmt)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(header: list[str], rows: list[list[Any]], widths: list[float], *, empty: str) -> Table:
    """A table with a repeated header row; numbers right-aligned, text wrapped."""
    # A column with a number in it is right-aligned throughout (its "—" too).
    numeric = [any(_is_number(row[i]) for row in rows) for i in range(len(header))]
    data: list[list[Any]] = [
        [Paragraph(escape(h), HEADER_RIGHT if numeric[i] else HEADER_CELL) for i, h in enumerate(header)]
    ]
    for row in rows:
        data.append([Paragraph(escape(_text(v)), NUMBER if numeric[i] else CELL) for i, v in enumerate(row)])
    if not rows:
        data.append([Paragraph(escape(empty), CELL)] + [""] * (len(header) - 1))
    total = sum(widths)
    table = Table(data, colWidths=[w / total * _usable_width() for w in widths], repeatRows=1, hAlign="LEFT")
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if not rows:
        style.append(("SPAN", (0, 1), (-1, 1)))
    table.setStyle(TableStyle(style))
    return table


PAGE = landscape(A4)
MARGIN = 14 * mm


def _usable_width() -> float:
    return PAGE[0] - 2 * MARGIN


def _section(title: str, *flowables: Any) -> list[Any]:
    # The heading stays with the start of its table.
    head, *rest = flowables
    return [KeepTogether([Paragraph(escape(title), H2), head]), *rest]


def _story(r: dict[str, Any]) -> list[Any]:
    actions = [_("granted"), _("withdrawn"), _("requested"), _("confirmed")]
    story: list[Any] = [
        Paragraph(escape(_("Compliance report")), TITLE),
        Paragraph(escape(r["brand"].name) + f" · <font color='#4b5563'>{escape(r['brand'].code)}</font>", SUBTITLE),
        Paragraph(
            escape(
                _("Period: %(since)s to %(until)s (not included). Generated at %(generated)s.")
                % {"since": _when(r["since"]), "until": _when(r["until"]), "generated": _when(r["generated_at"])}
            ),
            SUBTITLE,
        ),
        Spacer(1, 4 * mm),
    ]
    t = r["totals"]
    story += _section(
        _("Totals"),
        _table(
            [*actions, _("all events"), _("awaiting confirmation now")],
            [[*_counts(t), t["pending"]]],
            [1, 1, 1, 1, 1, 1.6],
            empty="",
        ),
    )
    story += _section(
        _("Notice versions in force during the period"),
        _table(
            [
                _("kind"),
                _("purpose"),
                _("language"),
                _("version"),
                _("title"),
                _("published"),
                _("replaced"),
                "SHA-256",
            ],
            [
                [
                    n["kind_label"],
                    n["purpose__code"],
                    n["locale"],
                    f"v{n['version']}",
                    n["title"],
                    _when(n["published_at"]),
                    _when(n["replaced_at"]) if n["replaced_at"] else _("in force at the end"),
                    n["sha256"][:16] + "…",
                ]
                for n in r["notices"]
            ],
            [1.4, 1.2, 0.8, 0.6, 2.6, 1.3, 1.3, 1.4],
            empty=_("No notice published."),
        ),
    )
    story += _section(
        _("By purpose, channel and source"),
        _table(
            [_("purpose"), _("channel"), _("source"), *actions, _("all")],
            [
                [
                    f"{row['purpose__name']} ({row['purpose__code']})",
                    row["channel_label"],
                    row["source_label"],
                    *_counts(row),
                ]
                for row in r["by_purpose"]
            ],
            [2.4, 1, 1.4, 0.8, 0.8, 0.8, 0.8, 0.8],
            empty=_("No consent events in this period."),
        ),
    )
    story += _section(
        _("Withdrawals per week"),
        _table(
            [_("ISO week"), _("starts"), _("withdrawn")],
            [[row["week"], _when(row["starts"], "%Y-%m-%d"), row["withdrawn"]] for row in r["withdrawals_by_week"]],
            [1, 1, 1],
            empty="",
        ),
    )
    story += _section(
        _("Double opt-ins awaiting confirmation now"),
        _table(
            [_("purpose"), _("channel"), _("pending"), _("expired"), _("oldest request")],
            [
                [row["purpose__code"], row["channel_label"], row["count"], row["expired"], _when(row["oldest"])]
                for row in r["pending"]
            ],
            [1.5, 1, 1, 1, 1.5],
            empty=_("None."),
        ),
    )
    story += _section(
        _("Busiest sources"),
        _table(
            [_("source"), _("reference"), _("store"), *actions, _("all")],
            [[row["source_label"], row["source_ref"], row["store__code"], *_counts(row)] for row in r["sources"]],
            [1.3, 2.4, 1.2, 0.8, 0.8, 0.8, 0.8, 0.8],
            empty=_("No consent events in this period."),
        ),
    )
    story += _section(
        _("Data requests and response times"),
        _table(
            [
                _("kind"),
                _("received in the period"),
                _("answered in the period"),
                _("answered late"),
                _("median days to answer"),
                _("longest (days)"),
                _("open at the end"),
                _("overdue at the end"),
            ],
            [
                [
                    row["kind_label"],
                    row["received"],
                    row["answered"],
                    row["answered_late"],
                    row["median_days"],
                    row["max_days"],
                    row["open_at_end"],
                    row["overdue_at_end"],
                ]
                for row in [*r["requests"]["by_kind"], r["requests"]["total"]]
            ],
            [1.8, 1, 1, 1, 1, 1, 1, 1],
            empty="",
        ),
    )
    story += _ledger(r)
    story += _pii(r)
    return story


def _ledger(r: dict[str, Any]) -> list[Any]:
    v, c = r["verification"], r["checkpoint"]
    if v is None:
        verification = _("never verified; run") + " manage.py verify_consent_ledger"
    elif v.ok:
        verification = _("%(when)s: intact (%(n)s events checked)") % {
            "when": _when(v.started_at),
            "n": v.events_checked,
        }
    else:
        verification = _("%(when)s: BROKEN: %(error)s") % {"when": _when(v.started_at), "error": v.first_error}
    if c is None:
        checkpoint = _("none yet")
    else:
        checkpoint = _("#%(id)s %(when)s, %(n)s events in %(c)s chains, Merkle root %(root)s") % {
            "id": c.pk,
            "when": _when(c.created_at),
            "n": c.event_count,
            "c": c.chain_count,
            "root": c.merkle_root,
        }
    table = _table(
        [_("Check"), _("Result")],
        [[_("Last verification"), verification], [_("Last checkpoint"), checkpoint]],
        [1, 5],
        empty="",
    )
    if v is not None and not v.ok:
        table.setStyle(TableStyle([("TEXTCOLOR", (1, 1), (1, 1), ALERT)]))
    return _section(_("Ledger integrity (all brands)"), table)


def _pii(r: dict[str, Any]) -> list[Any]:
    pii = r["pii"]
    by_user = _table(
        [_("staff account"), _("views"), _("member records shown"), _("first"), _("last")],
        [
            [row["actor_label"], row["views"], row["members"] or 0, _when(row["first"]), _when(row["last"])]
            for row in pii["by_user"]
        ],
        [2, 1, 1.4, 1.4, 1.4],
        empty=_("Nobody viewed full personal data in this period."),
    )
    latest = _table(
        [_("when"), _("staff account"), _("what"), _("member records shown"), _("IP address")],
        [
            [
                _when(row["created_at"]),
                row["actor_label"],
                row["object_repr"] or row["view"],
                row["shown"],
                row["ip_address"],
            ]
            for row in pii["latest"]
        ],
        [1.3, 1.3, 3, 1, 1.2],
        empty=_("None."),
    )
    note = Paragraph(
        escape(
            _("The latest %(n)s views, newest first. Staff work across brands, so this covers the whole platform.")
            % {"n": pii["limit"]}
        ),
        NOTE,
    )
    return [
        *_section(_("Who viewed full personal data (all brands)"), by_user),
        Spacer(1, 3 * mm),
        KeepTogether([note, latest]),
    ]


def _numbered_canvas(footer: str) -> type[canvas.Canvas]:
    """A canvas that knows the page count when it draws each footer (pages are kept until
    the document is complete, then stamped with "page N of M")."""

    class NumberedCanvas(canvas.Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            count = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(FONT, 7.5)
                self.setFillColor(MUTED)
                self.setStrokeColor(RULE)
                self.line(MARGIN, 10 * mm, PAGE[0] - MARGIN, 10 * mm)
                self.drawString(MARGIN, 6.5 * mm, footer)
                label = _("Page %(page)s of %(pages)s") % {"page": self._pageNumber, "pages": count}
                self.drawRightString(PAGE[0] - MARGIN, 6.5 * mm, label)
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(report: dict[str, Any]) -> bytes:
    """The labelled report (``page.labelled``) as PDF bytes, in the active language."""
    buffer = io.BytesIO()
    brand = report["brand"]
    title = _("Compliance report")
    period = f"{_when(report['since'], '%Y-%m-%d')} – {_when(report['until'] - dt.timedelta(seconds=1), '%Y-%m-%d')}"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=16 * mm,
        title=f"{title} · {brand.name} · {period}",
        author=brand.name,
        subject=title,
        creator="CDP",
    )
    footer = f"{title} · {brand.name} ({brand.code}) · {period}"
    doc.build(_story(report), canvasmaker=_numbered_canvas(footer))
    return buffer.getvalue()

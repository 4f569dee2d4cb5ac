"""The compliance report as a PDF document (reportlab's platypus): a title block, the same
tables as the page, and a footer with the brand, period and "page N of M" on every page.

Text is set in one TrueType font with Chinese, Cyrillic and Latin letters, embedded in the
document (``fonts``). Chinese text wraps between any two characters (reportlab's CJK rules);
other languages wrap between words, so a Russian or English word is never cut in two.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from . import fonts
from .cells import when
from .tables import shown_tables

INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#4b5563")
ACCENT = colors.HexColor("#1d4ed8")
RULE = colors.HexColor("#d1d5db")
HEAD_BG = colors.HexColor("#eef2ff")
ALERT = colors.HexColor("#b91c1c")


@dataclass(frozen=True)
class Styles:
    font: str
    cell: ParagraphStyle
    number: ParagraphStyle
    header_cell: ParagraphStyle
    header_right: ParagraphStyle
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h2: ParagraphStyle
    note: ParagraphStyle


@functools.cache
def _styles(font: str, cjk: bool) -> Styles:
    body = ParagraphStyle(
        "body",
        fontName=font,
        bulletFontName=font,
        fontSize=8.5,
        leading=11,
        textColor=INK,
        wordWrap="CJK" if cjk else None,
    )
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=10)
    header_cell = ParagraphStyle("header_cell", parent=cell, textColor=INK)
    return Styles(
        font=font,
        cell=cell,
        number=ParagraphStyle("number", parent=cell, alignment=TA_RIGHT),
        header_cell=header_cell,
        header_right=ParagraphStyle("header_right", parent=header_cell, alignment=TA_RIGHT),
        title=ParagraphStyle("title", parent=body, fontSize=18, leading=24, textColor=ACCENT, spaceAfter=4),
        subtitle=ParagraphStyle("subtitle", parent=body, fontSize=10, leading=14, textColor=MUTED),
        h2=ParagraphStyle("h2", parent=body, fontSize=11.5, leading=16, spaceBefore=10, spaceAfter=4, textColor=INK),
        note=ParagraphStyle("note", parent=body, fontSize=7.5, leading=10, textColor=MUTED),
    )


def styles() -> Styles:
    """The styles for the active language, in the report's font."""
    return _styles(fonts.report_font(), (get_language() or "").startswith("zh"))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _table(shown: dict[str, Any], st: Styles) -> Table:
    """One report table (``tables.ReportTable.shown``) with a repeated header row; numbers
    right-aligned, text wrapped, the total row (if any) last."""
    header = shown["headers"]
    rows = [*shown["rows"], *([shown["total"]] if shown["total"] else [])]
    # A column with a number in it is right-aligned throughout (its "—" too).
    numeric = [any(_is_number(row[i]["raw"]) for row in rows) for i in range(len(header))]
    data: list[list[Any]] = [
        [Paragraph(escape(h), st.header_right if numeric[i] else st.header_cell) for i, h in enumerate(header)]
    ]
    for row in rows:
        data.append(
            [Paragraph(escape(cell["text"]), st.number if numeric[i] else st.cell) for i, cell in enumerate(row)]
        )
    if not rows:
        data.append([Paragraph(escape(shown["empty"]), st.cell)] + [""] * (len(header) - 1))
    widths = shown["widths"]
    total = sum(widths)
    table = Table(data, colWidths=[w / total * _usable_width() for w in widths], repeatRows=1, hAlign="LEFT")
    style = [
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, ACCENT),
        ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONTNAME", (0, 0), (-1, -1), st.font),  # the empty cells beside an "empty" note
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


def _section(title: str, st: Styles, *flowables: Any) -> list[Any]:
    # The heading stays with the start of its table.
    head, *rest = flowables
    return [KeepTogether([Paragraph(escape(title), st.h2), head]), *rest]


def _story(r: dict[str, Any], st: Styles) -> list[Any]:
    story: list[Any] = [
        Paragraph(escape(_("Compliance report")), st.title),
        Paragraph(escape(r["brand"].name) + f" · <font color='#4b5563'>{escape(r['brand'].code)}</font>", st.subtitle),
        Paragraph(
            escape(
                _("Period: %(since)s to %(until)s (not included). Generated at %(generated)s.")
                % {"since": when(r["since"]), "until": when(r["until"]), "generated": when(r["generated_at"])}
            ),
            st.subtitle,
        ),
        Spacer(1, 4 * mm),
    ]
    for shown in shown_tables(r):
        flowables: list[Any] = [_table(shown, st)]
        if shown["note"]:
            flowables.append(Paragraph(escape(shown["note"]), st.note))
        story += _section(str(shown["title"]), st, *flowables)
    return story


def _numbered_canvas(footer: str, font: str) -> type[canvas.Canvas]:
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
                self.setFont(font, 7.5)
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
    fonts.embedded()  # warns in the log when the font cannot be embedded
    st = styles()
    brand = report["brand"]
    title = _("Compliance report")
    period = f"{when(report['since'], '%Y-%m-%d')} – {when(report['until'] - dt.timedelta(seconds=1), '%Y-%m-%d')}"
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
        initialFontName=st.font,  # else every page names Helvetica, a font that is not embedded
    )
    footer = f"{title} · {brand.name} ({brand.code}) · {period}"
    doc.build(_story(report, st), canvasmaker=_numbered_canvas(footer, st.font))
    return buffer.getvalue()

"""CSV downloads that a spreadsheet cannot turn into code.

A cell whose text starts with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice
and WPS (``=HYPERLINK(...)`` in a store's source reference would become a link that leaks
data or runs a command), and a leading tab, carriage return or NUL hides such a start from
a human reviewer while some importers strip it. Every cell that is *text* and starts with
one of these gets a leading ``'`` (OWASP "CSV injection"). django-import-export's
``escape_formulae`` only handles ``=``, so our exports use this module instead.

Decisions, kept here so every export behaves the same:

* Real numbers (``int``, ``float``, ``Decimal``, not ``bool``) are written as they are: a
  negative balance ``-5`` is data, not a formula, and stays a number in the sheet.
* Text is always checked, also text that looks like a number: ``"-5"`` becomes ``"'-5"``,
  because we cannot tell a typed ``-5`` from ``-5+cmd|' /C calc'!A0`` without parsing.
* The full-width forms (＝ ＋ － ＠) are neutralised too: Chinese input methods produce
  them and spreadsheets in CJK locales may read them as the half-width operators.
* ``None`` is an empty cell; booleans are ``true``/``false``; dates and times are ISO 8601
  in the current time zone with their offset; lists and dicts are compact JSON (which
  starts with ``[`` or ``{`` and so is never a formula).

Files are UTF-8 with a byte-order mark, so Excel on Windows shows Chinese correctly, and
are streamed: a ledger export never sits in memory whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0", "＝", "＋", "－", "＠")
BOM = "\ufeff"
# Rows per chunk handed to the server: big enough to keep per-chunk overhead low, small
# enough that the first bytes leave quickly and memory stays flat.
CHUNK_ROWS = 500


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def neutralise(value: Any) -> str:
    """The text of one cell, safe to open in a spreadsheet (see the module docstring)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    text = _text(value)
    if text.startswith(DANGEROUS_PREFIXES):
        return "'" + text
    return text


def csv_lines(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, for_machines: bool = False) -> Iterator[str]:
    """The file as text chunks: BOM and header first, then rows in chunks. ``for_machines``:
    no BOM and cells as they are, for a file another system reads (an SMS gateway rejects
    ``'+86…``), never a spreadsheet; its cells must be values we made or normalised."""
    cell = _text if for_machines else neutralise
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([cell(value) for value in header])
    yield buffer.getvalue() if for_machines else BOM + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    pending = 0
    for row in rows:
        writer.writerow([cell(value) for value in row])
        pending += 1
        if pending >= CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue()


def csv_response(
    filename: str, header: Sequence[Any], rows: Iterable[Sequence[Any]], *, for_machines: bool = False
) -> StreamingHttpResponse:
    """A streamed CSV download. ``rows`` is consumed lazily while the response is sent, so
    pass a generator over ``QuerySet.iterator()`` for big exports."""
    response = StreamingHttpResponse(
        (chunk.encode("utf-8") for chunk in csv_lines(header, rows, for_machines=for_machines)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    # Exports carry personal data: no shared cache may keep a copy.
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response

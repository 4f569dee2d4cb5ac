"""Counts of an import and the rejected rows (streamed to a CSV, a few kept for previews)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .reasons import Reason, as_reason, localized

PREVIEW_ERRORS = 200
ERROR_HEADER = ("row", "column", "value", "reason")
# A job's rejected rows as stored: the reason as its message id and parameters, translated
# when a person downloads or views them (``reasons``). Files stored before have ERROR_HEADER.
STORED_HEADER = ("row", "column", "value", "reason_id", "reason_params")
Problem = tuple[str, str, str]  # column, reason, value
# The two ways an import writes its rows (``ImportResult.path``).
COPY = "copy"  # the COPY path: PostgreSQL, set-based (imports.copy_path)
ROW_BY_ROW = "row-by-row"  # the row-by-row path: any database (imports.row_by_row)


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    merged: int = 0
    rejected: int = 0
    consent_events: int = 0
    seconds: float = 0.0
    sha256: str = ""
    encoding: str = ""
    dry_run: bool = False
    path: str = ""  # COPY or ROW_BY_ROW
    # The first few rejected rows' problems, for previews: row, column, value, reason (a
    # ``Reason``: English as a str, ``localized()`` for the reader). A row with several
    # problems has an entry for each.
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "merged": self.merged,
            "rejected": self.rejected,
            "consent_events": self.consent_events,
            "seconds": round(self.seconds, 3),
        }

    def add(self, other: ImportResult) -> None:
        for name in ("created", "updated", "merged", "rejected", "consent_events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ErrorLog:
    """Rejected rows, written as they come to a temporary CSV (a file with a million bad
    rows must not sit in memory), one line per problem: a row with a bad phone and a bad
    birthday has two, and counts once. ``write_csv`` writes the file a person reads
    (formula-safe, reasons in the active language), ``write_stored`` the one a job keeps."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self.count = 0

    def reject(self, row: int, column: str, reason: str, value: str = "") -> None:
        """A row rejected for one problem."""
        self.reject_all(row, [(column, reason, value)])

    def reject_all(self, row: int, problems: Iterable[Problem]) -> None:
        """A row rejected for every one of ``problems``."""
        self.count += 1
        self.result.rejected += 1
        for column, text, value in problems:
            why = as_reason(text)
            entry = (row, column, value[:200], why)
            self._writer.writerow((row, column, value[:200], *why.stored()))
            if len(self.result.errors) < PREVIEW_ERRORS:
                self.result.errors.append(entry)

    def rows(self) -> Iterator[tuple[int, str, str, Reason]]:
        self._file.flush()
        self._file.seek(0)
        for row, column, value, msgid, params in csv.reader(self._file):
            yield (int(row), column, value, Reason.from_stored(msgid, params))

    def write_csv(self, handle: IO[str]) -> None:
        """The rejected rows as a person reads them, reasons in the active language."""
        from cdp.csvutil import csv_lines

        for chunk in csv_lines(ERROR_HEADER, localized_rows(self.rows())):
            handle.write(chunk)

    def write_stored(self, handle: IO[str]) -> None:
        """The rejected rows as a job keeps them (``STORED_HEADER``; ``read_stored``)."""
        from cdp.csvutil import csv_lines

        stored = ((row, column, value, *why.stored()) for row, column, value, why in self.rows())
        for chunk in csv_lines(STORED_HEADER, stored):
            handle.write(chunk)

    def close(self) -> None:
        self._file.close()


def localized_rows(rows: Iterable[tuple[int, str, str, str]]) -> Iterator[tuple[int, str, str, str]]:
    for row, column, value, why in rows:
        yield row, column, value, localized(why)


def read_stored(handle: IO[str]) -> Iterator[tuple[int, str, str, str]]:
    """A job's stored rejected rows (either format) with their reasons as ``Reason``s
    (or, in a file stored before reasons were kept as message ids, as written)."""
    from .rows import unquote

    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    header[0] = header[0].lstrip("\ufeff")
    stored = tuple(header) == STORED_HEADER
    for cells in reader:
        cells = [unquote(cell) for cell in cells]
        if stored and len(cells) == 5:
            yield int(cells[0]), cells[1], cells[2], Reason.from_stored(cells[3], cells[4])
        elif len(cells) >= 4:
            yield int(cells[0]), cells[1], cells[2], cells[3]

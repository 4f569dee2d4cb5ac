"""Counts of an import and the rejected rows (streamed to a CSV, a few kept for previews)."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

PREVIEW_ERRORS = 200
ERROR_HEADER = ("row", "column", "value", "reason")
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
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)  # the first few, for previews

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
    rows must not sit in memory). ``copy_to`` writes the final file, formula-safe."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self.count = 0

    def reject(self, row: int, column: str, reason: str, value: str = "") -> None:
        self.count += 1
        self.result.rejected += 1
        entry = (row, column, value[:200], reason)
        self._writer.writerow(entry)
        if len(self.result.errors) < PREVIEW_ERRORS:
            self.result.errors.append(entry)

    def rows(self):
        self._file.flush()
        self._file.seek(0)
        for row, column, value, reason in csv.reader(self._file):
            yield (int(row), column, value, reason)

    def write_csv(self, handle: IO[str]) -> None:
        from cdp.csvutil import csv_lines

        for chunk in csv_lines(ERROR_HEADER, self.rows()):
            handle.write(chunk)

    def close(self) -> None:
        self._file.close()

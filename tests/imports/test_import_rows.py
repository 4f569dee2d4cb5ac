"""Units of the importer: encoding detection, headers, values, phones."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from imports.columns import (
    ValueProblem,
    consent_column,
    map_header,
    parse_consent,
    parse_date,
    parse_datetime,
)
from imports.readers import FileProblem, detect_encoding
from imports.rows import unquote
from members.identities import RecordError, normalize_phone, parse_phone


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("会员ID,姓名\n1,张伟\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "会员ID,姓名\n1,张伟\n".encode(), "utf-8-sig"),
        ("会员ID,姓名\n1,张伟\n".encode("utf-16"), "utf-16"),
        ("会员ID,姓名\n1,张伟\n".encode("gb18030"), "gb18030"),
        (b"member_id\n1\n", "utf-8"),
    ],
)
def test_detect_encoding(tmp_path, data, expected):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected


def test_utf8_wins_over_gb18030_even_though_both_decode(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("张伟".encode())
    assert "张伟".encode().decode("gb18030") == "寮犱紵"
    assert detect_encoding(path) == "utf-8"


def test_binary_is_refused(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(FileProblem, match="binary"):
        detect_encoding(path)


def test_header_mapping():
    header = map_header(
        [
            "\ufeff会员编号",
            "Mobile",
            "邮箱",
            "短信营销授权",
            "consent_third_party_sharing",
            "Consent_Marketing_WeChat",
            "备注",
        ]
    )
    assert header.columns == {"member_id": 0, "phone": 1, "email": 2}
    assert [(name, purpose, channel) for _, name, purpose, channel in header.consent] == [
        ("短信营销授权", "marketing", "sms"),
        ("consent_third_party_sharing", "third_party_sharing", ""),
        ("Consent_Marketing_WeChat", "marketing", "wechat"),
    ]
    assert header.extra == [(6, "备注")]
    assert map_header(["member_id", "会员ID"]).duplicates == ["会员ID"]
    assert consent_column("consent_at") is None


@pytest.mark.parametrize(("text", "answer"), [("1", True), ("Y", True), ("true", True), ("是", True), ("0", False),
                                              ("n", False), ("FALSE", False), ("否", False), ("", None), (" ", None)])  # fmt: skip
def test_consent_values(text, answer):
    assert parse_consent(text) is answer


def test_unknown_consent_value():
    with pytest.raises(ValueProblem):
        parse_consent("maybe")


def test_dates_and_times():
    assert parse_date("1990-01-02") == parse_date("1990/1/2") == parse_date("1990年1月2日") == dt.date(1990, 1, 2)
    assert parse_date("1990-01-02 00:00:00") == dt.date(1990, 1, 2)
    with pytest.raises(ValueProblem, match="not a possible date"):
        parse_date("2023-02-29")
    with pytest.raises(ValueProblem):
        parse_date("02/01/1990")
    moment = parse_datetime("2024-03-01 10:00")
    assert moment.isoformat() == "2024-03-01T10:00:00+08:00"
    assert parse_datetime("2024-03-01T10:00:00+00:00").utcoffset() == dt.timedelta(0)
    assert parse_datetime("2024/3/1").isoformat() == "2024-03-01T00:00:00+08:00"
    with pytest.raises(ValueProblem):
        parse_datetime("2024-13-01 10:00")


def test_unquote_only_removes_the_spreadsheet_text_marker():
    assert unquote("'=SUM(A1)") == "=SUM(A1)"
    assert unquote("'+8613800138000") == "+8613800138000"
    assert unquote("'quoted'") == "'quoted'"


def test_fast_phone_normalisation_equals_phonenumbers():
    """normalize_phone's shortcut for mainland mobiles answers as phonenumbers does."""
    rng = random.Random(7)
    for _ in range(3000):
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        raw = rng.choice([digits, "+86" + digits, "86" + digits, "0086" + digits, f"{digits[:3]} {digits[3:7]} {digits[7:]}",
                          f"+86-{digits[:3]}-{digits[3:7]}-{digits[7:]}", "(010) 6552 9988", "+7 912 345 67 89"])  # fmt: skip
        try:
            expected = parse_phone(raw.strip(), "CN")
        except RecordError:
            expected = "error"
        try:
            got = normalize_phone(raw)
        except RecordError:
            got = "error"
        assert got == expected, raw


def test_fast_email_validation_equals_djangos():
    """normalize_email's validator (compiled user pattern, cached domains) answers as
    Django's validate_email does."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from members.identities import normalize_email

    rng = random.Random(11)
    parts = ["a", "Z9", "user.name", "x+y", '"quoted"', "..", ".a", "a.", "é", "名", "a b", "", "-", "_"]
    domains = ["example.com", "qq.com", "localhost", "[127.0.0.1]", "[::1]", "[300.1.1.1]", "ex_ample.com",
               "-bad.com", "xn--fsq.com", "例子.公司", "a" * 64 + ".com", "com", "a..b", "a.b-", ""]  # fmt: skip
    for _ in range(3000):
        raw = rng.choice(parts) + rng.choice(["@", "@", "@@", ""]) + rng.choice(domains)
        try:
            validate_email(raw.strip().lower())
            expected = raw.strip().lower()
        except ValidationError:
            expected = "error"
        try:
            got = normalize_email(raw)
        except RecordError:
            got = "error"
        assert got == expected or (got == "error" and not raw.strip()), raw


def test_evidence_text_is_the_canonical_json_of_the_evidence():
    from types import SimpleNamespace

    from consent.models import canonical_json
    from imports.context import ImportContext

    ctx = ImportContext.__new__(ImportContext)
    ctx.sha256 = "ab" * 32
    row = SimpleNamespace(number=12345)
    assert ctx.evidence_text(row) == canonical_json(ctx.evidence(row))
    # A row timed by the import's stated consent time names it.
    import datetime as dt
    from zoneinfo import ZoneInfo

    ctx.consent_at = dt.datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    stated = SimpleNamespace(number=7, stated_time=True)
    assert ctx.evidence_text(stated) == canonical_json(ctx.evidence(stated))
    assert ctx.evidence(stated)["consent_at"] == "2026-03-01T10:00:00+08:00"

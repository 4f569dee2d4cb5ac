"""Member file templates to download from the import page: every column the importer reads
(DESIGN.md "Member file columns"), with Chinese or English headers and one example row, as
CSV (UTF-8 with a byte-order mark, so Excel shows Chinese) or XLSX. A template imports as
it is: the example row is a valid member (tests/imports/test_file_templates.py)."""

from __future__ import annotations

import io

from django.utils import timezone
from openpyxl import Workbook
from openpyxl.styles import Font

from cdp.csvutil import csv_lines

# (English header, Chinese header, example value)
COLUMNS = [
    ("member_id", "会员ID", "M0001"),
    ("phone", "手机号", "13800138000"),
    ("email", "邮箱", "wang.xiaoming@example.com"),
    ("name", "姓名", "王小明"),
    ("gender", "性别", "男"),
    ("birthday", "生日", "1990-05-01"),
    ("province", "省份", "上海"),
    ("city", "城市", "上海"),
    ("joined_at", "入会时间", "now"),
    ("tier", "会员等级", "金卡"),
    ("points", "积分", "120"),
    ("wechat_unionid", "unionid", ""),
    ("consent_marketing_sms", "短信营销授权", "是"),
    ("consent_marketing_email", "邮件营销授权", ""),
    ("consent_personalization", "个性化推荐授权", "否"),
    ("consent_at", "授权时间", "now"),
]
LANGUAGES = ("zh", "en")
FORMATS = ("csv", "xlsx")


def header(language: str) -> list[str]:
    return [chinese if language == "zh" else english for english, chinese, _ in COLUMNS]


def example() -> list[str]:
    """The example row; its times are the download's (local time), so it never
    predates the notices the brand published before downloading it."""
    now = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
    return [now if value == "now" else value for _, _, value in COLUMNS]


def as_csv(language: str) -> bytes:
    return "".join(csv_lines(header(language), [example()])).encode("utf-8")  # BOM first


def as_xlsx(language: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "members" if language == "en" else "会员"
    sheet.append(header(language))
    sheet.append(example())
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column in sheet.columns:  # every column as text: phone numbers keep their digits
        for cell in column:
            cell.number_format = "@"
        sheet.column_dimensions[column[0].column_letter].width = max(12, len(str(column[0].value)) * 2)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()

"""Shared helpers for the member import tests: purposes with notices, writing files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from consent import services as consent_services
from consent.models import Notice, Purpose

HEADER = [
    "member_id", "phone", "email", "name", "gender", "birthday", "province", "city", "joined_at", "tier", "points",
    "wechat_unionid", "consent_marketing_sms", "consent_marketing_email", "consent_personalization", "consent_at",
]  # fmt: skip


def row(member_id: str, **values: str) -> list[str]:
    defaults = {
        "phone": "",
        "email": "",
        "name": "",
        "gender": "",
        "birthday": "",
        "province": "",
        "city": "",
        "joined_at": "2024-03-01 10:00:00",
        "tier": "",
        "points": "",
        "wechat_unionid": "",
        "consent_marketing_sms": "",
        "consent_marketing_email": "",
        "consent_personalization": "",
        "consent_at": "",
    }
    defaults.update(values)
    return [member_id, *(defaults[name] for name in HEADER[1:])]


def write_csv(path: Path, rows: list[list[str]], *, header: list[str] | None = None, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.fixture
def purposes(brand):
    """Marketing (SMS, e-mail) and personalization, each with a published notice."""
    made = {}
    for code, channels in (("marketing", ["sms", "email"]), ("personalization", [])):
        purpose = Purpose.objects.create(brand=brand, code=code, name=code, channels=channels)
        consent_services.publish_notice(
            brand=brand, kind=Notice.Kind.PURPOSE_NOTICE, purpose=purpose, locale="zh-hans", title=code, body="v1"
        )
        made[code] = purpose
    return made


class Out(io.StringIO):
    def isatty(self) -> bool:
        return False


def run_import(path: Path, store_code: str, *args: str) -> dict:
    """The command with --json; returns the parsed last line."""
    out = Out()
    call_command("import_members", str(path), "--store", store_code, "--json", *args, stdout=out, stderr=Out())
    return json.loads(out.getvalue().strip().splitlines()[-1])
